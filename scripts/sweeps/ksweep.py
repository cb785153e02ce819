#!/usr/bin/env python3
"""Issue 10's attack classes, swept with the built binary (see run.sh)."""
import os
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.environ["SWEEP_WORK"]
import subprocess, random, time, os, glob, signal, sys
B=os.path.join(ROOT, 'bin/etcdsafe'); random.seed(3)
arch=glob.glob(WORK+'/big/*.age')[0]
T=WORK+'/ktmp'; os.makedirs(T, exist_ok=True)
for f in os.listdir(T): subprocess.run(['rm','-rf',os.path.join(T,f)])
marker=b'obj-0001395'
kills=0; left_plain=0
cmds=[['ls',arch,'-A'],['get',arch,'deployments','-A'],['verify',arch],['dump',arch,'-A','--out',WORK+'/kdump']]
for i in range(24):
    c=cmds[i%4]
    p=subprocess.Popen([B]+c+['-i',WORK+'/k.txt','--tmp-dir',T],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
    time.sleep(random.uniform(0.05,1.5))
    if p.poll() is None:
        p.send_signal(signal.SIGKILL); kills+=1
    p.wait()
    subprocess.run(['rm','-rf',WORK+'/kdump'])
    n=0
    for d in os.listdir(T):
        for root,_,files in os.walk(os.path.join(T,d)):
            for f in files:
                with open(os.path.join(root,f),'rb') as fh:
                    if marker in fh.read(): n+=1
    left_plain+=n; maxleft=max(globals().get('maxleft',0), len(os.listdir(T))); globals()['maxleft']=maxleft
# count leftovers with plaintext
dirs=os.listdir(T); plain=0
for d in dirs:
    for root,_,files in os.walk(os.path.join(T,d)):
        for f in files:
            with open(os.path.join(root,f),'rb') as fh:
                if marker in fh.read(): plain+=1
print('runs left plaintext (cumulative count of files seen after each run)',left_plain,'max dirs at once',maxleft); print('kills',kills,'leftover dirs',len(dirs),'files with plaintext',plain)
p=subprocess.run([B,'ls',arch,'-i',WORK+'/k.txt','--tmp-dir',T,'deployments','-n','ns-00000'],capture_output=True)
print('next run rc',p.returncode,'swept lines',p.stderr.count(b'left by an interrupted run'),'left after:',os.listdir(T))
