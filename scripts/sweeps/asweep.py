#!/usr/bin/env python3
"""Issue 10's attack classes, swept with the built binary (see run.sh)."""
import os
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.environ["SWEEP_WORK"]
import random, subprocess, collections, os, shutil, glob, json
B=os.path.join(ROOT, 'bin/etcdsafe')
random.seed(11)
os.chdir(WORK)
a=glob.glob('arch/*.age')[0]; orig=open(a,'rb').read()
sc=json.load(open(a+'.json'))
res=collections.Counter(); bad=[]
muts=['flip','cut','append','zero']
cmds=[lambda f:['ls',f,'-A','-i','k.txt','--tmp-dir','tmpd'], lambda f:['verify',f,'-i','k.txt','--tmp-dir','tmpd'], lambda f:['restore',f,'-i','k.txt','--data-dir',WORK+'/dd','--kube-dir',WORK+'/kd','--tmp-dir','tmpd']]
os.makedirs('tmpd',exist_ok=True)
for i in range(300):
    b=bytearray(orig); m=muts[i%4]
    if m=='flip': off=random.randrange(len(b)); b[off]^=1<<random.randrange(8)
    elif m=='cut': b=b[:random.randrange(len(b))]
    elif m=='append': b+=os.urandom(random.randrange(1,100))
    else:
        off=random.randrange(len(b)); b[off:off+64]=bytes(min(64,len(b)-off))
        if b==orig: continue
    open('fa.tar.zst.age','wb').write(b)
    s=dict(sc); s['archive']='fa.tar.zst.age'; json.dump(s,open('fa.tar.zst.age.json','w'))
    c=cmds[i%3]('fa.tar.zst.age')
    p=subprocess.run([B]+c,capture_output=True,timeout=60)
    leftovers=os.listdir('tmpd')
    ok = p.returncode==3 and len(p.stdout)==0 and not leftovers and not os.path.exists('dd') and not os.path.exists('kd') and b'goroutine' not in p.stderr
    res[(c[0],m,ok)]+=1
    if not ok: bad.append((m,c[0],p.returncode,leftovers,p.stderr[-300:]))
    shutil.rmtree('dd',ignore_errors=True); shutil.rmtree('kd',ignore_errors=True)
print(dict(res)); print(bad[:5])
# plain archive refused everywhere
subprocess.run([B,'backup','--from-db',ROOT+'/testdata/real-k8s1.37-etcd3.7/snapshot.db','--kube-dir','','--insecure-no-encryption','--out','plain.tar.zst'],capture_output=True)
r=collections.Counter()
for c in (['ls','plain.tar.zst'],['status','plain.tar.zst','-i','k.txt'],['get','plain.tar.zst','ns','-i','k.txt'],['verify','plain.tar.zst','-i','k.txt'],['restore','plain.tar.zst','-i','k.txt','--data-dir',WORK+'/dd']):
    p=subprocess.run([B]+c,capture_output=True); r[(c[0],p.returncode)]+=1
print('plain archive:', dict(r), 'dd exists:', os.path.exists('dd'))
