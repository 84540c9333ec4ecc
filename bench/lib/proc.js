'use strict';
// Child processes for the bench: server contestants (READY/STATS protocol),
// bounded client runs, and /proc sampling of a server's CPU and memory.
const { spawn } = require('child_process');
const fs = require('fs');

const CLK_TCK = 100; // Linux USER_HZ; /proc/<pid>/stat times are in these ticks
const live = new Set();

// Never leave a server or client behind, whatever way the harness ends.
function killAll() {
  for (const c of live) try { c.kill('SIGKILL'); } catch {}
}
process.on('exit', killAll);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { killAll(); process.exit(130); });

function track(child) {
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

// utime+stime of a process (all its threads), and of its waited-for children,
// in seconds.
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
  // v[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17
  return { self: (+v[11] + +v[12]) / CLK_TCK, children: (+v[13] + +v[14]) / CLK_TCK };
}

// CPU seconds the whole machine spent busy (all cores, everything but idle and
// iowait), from /proc/stat: to tell how much other work shared the machine.
function machineBusySeconds() {
  const v = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is inside user)
  return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] || 0)) / CLK_TCK;
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? +m[1] : NaN;
}

// Calls onLine for each stdout line of child.
function lines(stream, onLine) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { onLine(buf.slice(0, i)); buf = buf.slice(i + 1); }
  });
  stream.on('end', () => { if (buf) onLine(buf); });
}

// A server contestant. start() resolves once it printed "READY <port>".
// With { control: true } its stdin is a pipe: query() asks for its counters.
class Server {
  constructor(cmd, args, { label, readyTimeoutMs = 15000, cwd, control = false } = {}) {
    Object.assign(this, { cmd, args, label, readyTimeoutMs, cwd, control });
    this.stats = null;
    this.info = {};
    this.stderr = '';
  }

  start() {
    return new Promise((resolve, reject) => {
      const c = track(spawn(this.cmd, this.args, { cwd: this.cwd, stdio: [this.control ? 'pipe' : 'ignore', 'pipe', 'pipe'] }));
      this.child = c;
      this.exited = new Promise((r) => c.on('exit', (code, sig) => r({ code, sig })));
      const t = setTimeout(() => { c.kill('SIGKILL'); reject(new Error(`${this.label}: no READY in ${this.readyTimeoutMs} ms\n${this.stderr}`)); }, this.readyTimeoutMs);
      c.stderr.setEncoding('utf8');
      c.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
      lines(c.stdout, (l) => {
        const [k, ...rest] = l.split(' ');
        const v = rest.join(' ');
        if (k === 'READY') { clearTimeout(t); this.port = +v; this.pid = c.pid; resolve(this); }
        else if (k === 'STATS') {
          try { this.stats = JSON.parse(v); } catch {}
          if (this.onStats) { const f = this.onStats; this.onStats = null; f(this.stats); }
        }
        else if (k === 'IMPL') this.info.impl = v;
        else if (k === 'PIDS') this.pids = v.split(' ').map(Number); // a cluster's workers
        else if (k === 'GCDONE' && this.onGc) this.onGc();
      });
      c.on('exit', (code, sig) => { clearTimeout(t); reject(new Error(`${this.label} exited (${code ?? sig}) before READY\n${this.stderr}`)); });
    });
  }

  alive() { return this.child && this.child.exitCode === null && this.child.signalCode === null; }
  // CPU of the server: its process (all threads) plus, under cluster, every worker process.
  cpu() { return [this.pid, ...(this.pids || [])].reduce((a, p) => a + cpuSeconds(p).self, 0); }
  // The same, split: { total, main } where main is the process the harness started (a cluster's primary).
  cpuSplit() { const main = cpuSeconds(this.pid).self; return { total: main + (this.pids || []).reduce((a, p) => a + cpuSeconds(p).self, 0), main }; }
  rss() { return rssKiB(this.pid); }

  // Asks a node server for a full GC (SIGUSR2 -> "GCDONE"), bounded in time.
  gc(timeoutMs = 10000) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.onGc = () => { clearTimeout(t); this.onGc = null; resolve(); };
      this.child.kill('SIGUSR2');
    });
  }

  // Its counters now (a server started with { control: true }): writes "STATS"
  // to its stdin and resolves with the STATS line it prints.
  query(timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.onStats = null; reject(new Error(`${this.label}: no STATS in ${timeoutMs} ms`)); }, timeoutMs);
      this.onStats = (s) => { clearTimeout(t); resolve(s); };
      this.child.stdin.write('STATS\n');
    });
  }

  // SIGTERM, wait for the STATS line and exit; SIGKILL after timeoutMs.
  async stop(timeoutMs = 15000) {
    if (!this.alive()) return this.exited;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

// Runs a client to completion with a hard time limit. hooks.onLine(line,
// child) sees each stdout line (for the PRIMED/HOLDING handshakes).
function run(cmd, args, { timeoutMs, onLine } = {}) {
  return new Promise((resolve, reject) => {
    const c = track(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.stderr.setEncoding('utf8');
    c.stderr.on('data', (d) => { err += d; });
    lines(c.stdout, (l) => { out += l + '\n'; if (onLine) onLine(l, c); });
    c.on('error', reject);
    c.on('close', (code, sig) => {
      clearTimeout(t);
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} failed (${code ?? sig}): ${err.slice(-2000)}`));
      else resolve(out);
    });
  });
}

module.exports = { Server, run, track, cpuSeconds, rssKiB, machineBusySeconds, killAll };
