'use strict';
// Hand-written SVG of the bench ratios, no dependencies:
// per cell, one bar per contestant = its server CPU per handshake (per MB for
// bulk) divided by node:tls defaults' in the same run. 1.0 = node:tls; lower
// is better. `node bench/chart.js [results.json] > chart.svg` re-renders.
const COLORS = { addon: '#2b8a3e', node: '#868e96', 'node-sid': '#f08c00', c: '#1c7ed6' };
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function renderChart(results) {
  const W = 900;
  const left = 330;
  const right = 150; // room for "1.90 (no resumption)"
  const bar = 13;
  const ids = results.contestants.map((c) => c.id);
  const cells = results.cells.filter((c) => Object.values(c.results).some((r) => Number.isFinite(r.cpuVsNode)));
  const max = Math.max(1.5, ...cells.flatMap((c) => Object.values(c.results).map((r) => r.cpuVsNode || 0)));
  const x = (v) => left + ((W - left - right) * v) / max;
  const parts = [];
  let y = 70;
  for (const cell of cells) {
    parts.push(`<text x="8" y="${y + 11}" class="cell">${esc(cell.title)}</text>`);
    for (const id of ids) {
      const r = cell.results[id];
      if (!r) continue;
      const v = r.cpuVsNode;
      if (Number.isFinite(v)) {
        parts.push(`<rect x="${left}" y="${y}" width="${(x(v) - left).toFixed(1)}" height="${bar - 2}" fill="${COLORS[id] || '#555'}"/>`);
        const note = r.status === 'unsupported' ? ' (no resumption)' : r.status === 'failed' ? ' FAILED' : '';
        parts.push(`<text x="${(x(v) + 4).toFixed(1)}" y="${y + 9}" class="v">${v.toFixed(2)}${note}</text>`);
      }
      y += bar;
    }
    y += 8;
  }
  const ticks = [];
  for (let t = 0; t <= max + 1e-9; t += max > 3 ? 1 : 0.5) {
    ticks.push(`<line x1="${x(t)}" y1="60" x2="${x(t)}" y2="${y}" class="${t === 1 ? 'one' : 'grid'}"/>` +
      `<text x="${x(t)}" y="${y + 14}" class="tick">${t}</text>`);
  }
  const legend = results.contestants.map((c, i) =>
    `<rect x="${8 + i * 220}" y="34" width="10" height="10" fill="${COLORS[c.id] || '#555'}"/>` +
    `<text x="${22 + i * 220}" y="43" class="v">${esc(c.label)}${c.impl ? ` [${esc(c.impl)}]` : ''}</text>`).join('');
  const m = results.meta || {};
  const H = y + 40;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">
<style>.cell{font-size:11px;fill:#222}.v{font-size:10px;fill:#333}.tick{font-size:10px;fill:#666;text-anchor:middle}
.grid{stroke:#ddd}.one{stroke:#c92a2a;stroke-dasharray:4 3}.t{font-size:14px;font-weight:bold}.s{font-size:10px;fill:#666}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="8" y="18" class="t">Server CPU per handshake relative to node:tls defaults (lower is better)</text>
${legend}
${ticks.join('\n')}
${parts.join('\n')}
<text x="8" y="${H - 8}" class="s">${esc(`${m.cpu || ''}, ${m.cores || '?'} cores; node ${m.node || ''} (OpenSSL ${m.nodeOpenssl || ''}); ${m.date || ''}`)}</text>
</svg>
`;
}

module.exports = { renderChart };

if (require.main === module) {
  const file = process.argv[2] || require('path').join(__dirname, 'out', 'results.json');
  process.stdout.write(renderChart(JSON.parse(require('fs').readFileSync(file, 'utf8'))));
}
