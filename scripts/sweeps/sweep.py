#!/usr/bin/env python3
"""Issue 10's attack classes, swept with the built binary (see run.sh)."""
import os
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.environ["SWEEP_WORK"]
import random, subprocess, collections, os, shutil, sys
B=os.path.join(ROOT, 'bin/etcdsafe')
random.seed(7)
os.chdir(WORK)
orig=open(ROOT+'/testdata/real-k8s1.37-etcd3.7/snapshot.db','rb').read()
res=collections.Counter(); bad=[]
cmds=[lambda f:['ls',f,'-A'], lambda f:['get',f,'deployments','-A'], lambda f:['dump',f,'-A','--out','dumpout'], lambda f:['history',f,'deployment/coredns','-n','kube-system'], lambda f:['get',f,'configmaps','-A','-o','json']]
N=int(sys.argv[1]) if len(sys.argv)>1 else 600
for i in range(N):
    b=bytearray(orig); off=random.randrange(len(b)); b[off]^=1<<random.randrange(8)
    open('f.db','wb').write(b)
    shutil.rmtree('dumpout',ignore_errors=True)
    c=cmds[i%len(cmds)]('f.db')
    p=subprocess.run([B]+c,capture_output=True,timeout=60)
    ok = p.returncode==3 and len(p.stdout)==0 and not os.path.exists('dumpout') and b'panic' not in p.stderr
    res[(c[0],ok)]+=1
    if not ok: bad.append((off,c[0],p.returncode,p.stderr[-200:]))
print('snapshot bit flips', dict(res)); print(bad[:5])
# raw db (trailer cut) with zeroed 4 KiB pages, --check
raw=orig[:-32]; res=collections.Counter()
for pg in range(2, len(raw)//4096):
    b=bytearray(raw); b[pg*4096:(pg+1)*4096]=bytes(4096)
    open('r.db','wb').write(b)
    p=subprocess.run([B,'ls','r.db','-A','--check'],capture_output=True,timeout=60)
    res[(p.returncode, len(p.stdout)>0, b'panic' in p.stderr)]+=1
print('raw db zeroed pages with --check (rc, printed, panic):', dict(res))
