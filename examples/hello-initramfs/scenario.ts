import { scenario } from 'rootprobe';

export default scenario({
  name: 'hello-initramfs',
  description: 'The initramfs mounts a tmpfs on /scratch and starts a process in it; ' +
    'before, / is rootfs and /scratch is no mount; after, /scratch is the tmpfs and the process works in it.',
  features: ['initrd', 'proc', 'devtmpfs', 'tmpfs', 'serial'],
  initramfs(t, ctx) {
    t.script('/init', ctx.here('init.sh'));   // busybox, modules and the probe are added for you
  },
  stages: ['before', 'after'],              // what init.sh probes, in order (`done` comes last)
  check({ stage, expect, evidence }) {
    const before = stage('before');
    const after = stage('after');
    expect(before).to.have.mount('/').of.type('rootfs');
    expect(before).to.not.have.mount('/scratch');
    expect(before.process(1)).to.have.exe('/bin/busybox');

    expect(after).to.have.mount('/scratch').of.type('tmpfs').from('scratch');
    expect(after).to.have.processNamed('sleep').with.cwd('/scratch');
    expect(after).to.have.command('df').that.succeeded.with.output(/scratch/);
    evidence(`after: /scratch is mount ${after.mountAt('/scratch')!.mountId}, parent ${after.mountAt('/scratch')!.parentId}`);
  },
}, import.meta);
