/**
 * The HTML report: one self-contained page (styles and script inline, a Content-Security-Policy
 * that forbids every fetch), readable from disk or as a CI artifact. Per run the verdict and
 * message, behaviours and evidence; per stage the mount tree with what changed since the stage
 * before (tree.ts), options on demand, the process table with its links, kernel threads folded;
 * the kernel's reports (WARNING, BUG... with their call-trace frames) marked as panics are;
 * the console with panics and warnings marked: the record's tail, or more of the run's
 * console.log where the caller gives it (`HtmlOptions.consoleLog`, console-log.ts).
 * `diffHtml` puts two kernels side by side.
 *
 * Everything from the guest is escaped: a mount point or a command line can hold anything.
 * The page carries data attributes (data-run, data-stage, data-mount-id, data-marks) that the
 * browser test (test/html-browser.test.ts) compares with the model.
 */
import type { RunRecord } from '../run/run-scenario.ts';
import type { StageJSON } from '../readback/snapshot.ts';
import type { LinkText } from '../readback/links.ts';
import type { MatrixReport } from './formats.ts';
import type { Difference } from './diff.ts';
import type { ConsoleLog } from './console-log.ts';
import type { KernelReport } from '../verdict/kernel-log.ts';
import { MARK_LEGEND, consoleLineKind, processRows, runTrees, type MountMark, type MountNode, type StageTree } from './tree.ts';

/** Text as HTML: the five special characters escaped, characters HTML cannot carry dropped. */
export function esc(s: unknown): string {
  return String(s)
    .replace(/[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** A number from the report as text: a crafted JSON cannot smuggle markup in through an id. */
const num = (x: unknown): string => String(Number(x));

const MARK_TEXT: Record<MountMark, string> = { new: 'new', moved: 'moved', hidden: 'hidden', gone: 'gone' };
const LEGEND_SHORT: Record<MountMark, string> = {
  new: 'since the stage before',
  moved: 'same id, new parent or point',
  hidden: 'below an overmount',
  gone: 'no longer there',
};

const CSS = `
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--dim:#6b7385;--line:#d9dde5;--pass:#1f8a4c;--fail:#c62f3a;
--new:#1f8a4c;--new-bg:#e3f5ea;--moved:#2f63c6;--moved-bg:#e5edfb;--hidden:#8a5a00;--hidden-bg:#fbf0d9;--gone:#c62f3a;--gone-bg:#fbe5e7;
--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header.page{background:#1d2330;color:#fff;padding:14px 24px}
header.page h1{margin:0;font-size:18px;font-weight:600}
header.page .meta{color:#b8c0d0;font-size:12px;margin-top:2px}
nav.runs{display:flex;flex-wrap:wrap;gap:8px;padding:10px 24px;background:#fff;border-bottom:1px solid var(--line)}
nav.runs a{text-decoration:none;color:var(--ink);border:1px solid var(--line);border-radius:14px;padding:2px 10px;font-size:13px}
main{padding:16px 24px;max-width:1400px}
section.run{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:0 0 20px;padding:14px 18px}
section.run>h2{margin:0 0 6px;font-size:17px;display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.verdict{font-size:12px;font-weight:700;letter-spacing:.04em;border-radius:4px;padding:2px 8px;color:#fff;background:var(--fail)}
.verdict.passed{background:var(--pass)}
.flaky{font-size:12px;background:#f0c04d;border-radius:4px;padding:2px 8px}
.sub{color:var(--dim);font-size:12px;font-weight:400}
pre{font-family:var(--mono);font-size:12px;background:#f3f4f7;border:1px solid var(--line);border-radius:6px;padding:8px 10px;overflow:auto;white-space:pre-wrap;word-break:break-all;margin:6px 0}
pre.message{background:#fdf1f2;border-color:#efc3c7}
ul.facts{margin:6px 0 10px;padding-left:18px}
ul.facts li{margin:1px 0}
ul.facts li.behaviour::marker{content:"◆ ";color:var(--moved)}
.story{display:flex;gap:0;margin:12px 0 4px;flex-wrap:wrap}
.story a{display:block;text-decoration:none;color:var(--ink);border:1px solid var(--line);padding:4px 12px;background:#fafbfc;font-size:13px;position:relative}
.story a+a{border-left:none}
.story a:first-child{border-radius:6px 0 0 6px}.story a:last-child{border-radius:0 6px 6px 0}
.story .counts{display:block;font-size:11px;color:var(--dim)}
section.stage{border-top:1px solid var(--line);margin-top:14px;padding-top:10px}
section.stage>h3{margin:0 0 6px;font-size:15px}
.stage-grid{display:grid;grid-template-columns:minmax(360px,2fr) minmax(0,3fr);gap:18px;align-items:start}
@media (max-width:1000px){.stage-grid{grid-template-columns:1fr}}
.legend{display:flex;flex-wrap:wrap;gap:4px 10px;font-size:12px;color:var(--dim);margin:2px 0 8px}
.legend span{cursor:help}
.mark{display:inline-block;font-size:11px;font-weight:600;border-radius:3px;padding:0 6px;line-height:17px;border:1px solid}
.mark.new{color:var(--new);background:var(--new-bg);border-color:#a9dcbc}
.mark.moved{color:var(--moved);background:var(--moved-bg);border-color:#b4c8f0}
.mark.hidden{color:var(--hidden);background:var(--hidden-bg);border-color:#ecd29a}
.mark.gone{color:var(--gone);background:var(--gone-bg);border-color:#efb8bd}
ul.tree,ul.tree ul{list-style:none;margin:0;padding:0}
ul.tree ul{margin-left:14px;padding-left:14px;border-left:1px solid #c3c9d4}
ul.tree li{position:relative;margin:3px 0}
ul.tree ul>li::before{content:"";position:absolute;left:-14px;top:13px;width:12px;border-top:1px solid #c3c9d4}
.node{display:inline-block;border:1px solid var(--line);border-radius:6px;padding:3px 8px;background:#fff;max-width:100%}
.node.m-new{border-color:#7cc79a;background:var(--new-bg)}
.node.m-moved{border-color:#8eaee8;background:var(--moved-bg)}
.node.is-hidden{background:repeating-linear-gradient(135deg,#fff,#fff 6px,#f7efdc 6px,#f7efdc 12px);border-style:dashed;border-color:#d8b76a}
.node.is-gone{opacity:.75;border-style:dashed;border-color:#e59aa1;background:var(--gone-bg)}
.node.is-gone .mp{text-decoration:line-through}
.node.unknown{color:var(--dim);border-style:dotted}
.node.differs{outline:2px solid #e0a030}
.mp{font-family:var(--mono);font-weight:700}
.fs{font-family:var(--mono);font-size:12px;background:#eef0f4;border-radius:3px;padding:0 5px;margin-left:6px}
.src{font-family:var(--mono);font-size:12px;color:var(--dim);margin-left:6px}
.mid{font-size:11px;color:var(--dim);margin-left:6px}
.note{font-size:12px;color:var(--dim);margin-left:6px}
.node details{margin-top:2px}
.node summary{font-size:11px;color:var(--dim);cursor:pointer}
.node dl{display:grid;grid-template-columns:auto 1fr;gap:0 10px;margin:4px 0 2px;font-size:12px}
.node dt{color:var(--dim)}.node dd{margin:0;font-family:var(--mono);word-break:break-all}
table.procs{border-collapse:collapse;width:100%;font-size:12px}
table.procs th{text-align:left;color:var(--dim);font-weight:600;border-bottom:1px solid var(--line);padding:3px 6px}
table.procs td{border-bottom:1px solid #eef0f4;padding:3px 6px;vertical-align:top;font-family:var(--mono);overflow-wrap:anywhere}
table.procs td.n{white-space:nowrap}
table.procs td.cmd{max-width:150px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
table.procs td.link-cell{min-width:110px;overflow-wrap:normal}
.procwrap{overflow-x:auto}
table.procs tr.probe td{color:var(--dim)}
table.procs tr.pid1 td:first-child{font-weight:700}
.link.deleted{color:var(--gone)}
.deco{font-size:11px;font-weight:600;border-radius:3px;padding:0 4px;margin-left:3px;font-family:system-ui,sans-serif}
.deco.deleted{background:var(--gone-bg);color:var(--gone)}
.deco.unreachable{background:var(--hidden-bg);color:var(--hidden)}
.was{display:block;color:var(--dim);font-size:11px}
.was::before{content:"was "}
td.changed{background:#f2f6fe}
details.kthreads>summary,details.console>summary,details.raw>summary{cursor:pointer;color:var(--dim);font-size:12px;margin:6px 0}
pre.console .panic{background:#fbd5d9;color:#8d0f1c;font-weight:700;display:block}
pre.console .warning{background:#fdf0cf;display:block}
div.kreports{border:1px solid #efb8bd;background:#fdf1f2;border-radius:6px;padding:6px 10px;margin:8px 0}
div.kreports>h4{margin:0 0 4px;font-size:13px;color:#8d0f1c}
div.kreports ol{margin:0;padding-left:20px}
li.kreport{margin:4px 0}
li.kreport .ktitle{background:#fbd5d9;color:#8d0f1c;font-weight:700;font-family:var(--mono);font-size:12px;padding:0 4px;border-radius:3px}
li.kreport .kkind{font-size:11px;font-weight:600;color:#8d0f1c;margin-right:6px;text-transform:uppercase}
li.kreport pre.frames{margin:3px 0;background:#fff}
li.kreport .kline{font-family:var(--mono);font-size:11px;color:var(--dim);word-break:break-all}
.tools{float:right;font-size:12px}
.tools button{font:inherit;border:1px solid var(--line);background:#fff;border-radius:4px;padding:2px 8px;cursor:pointer}
.side{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.side>div>h4{margin:4px 0;font-size:13px}
details.timeline{width:fit-content;max-width:100%}
details.timeline>summary{cursor:pointer;color:var(--dim);font-size:12px;margin:8px 0 4px}
table.timeline{border-collapse:collapse;font-size:12px;margin:2px 0 6px}
table.timeline th,table.timeline td{border:1px solid var(--line);padding:3px 8px;text-align:left;white-space:nowrap}
table.timeline th{font-weight:600;background:#f3f4f7}
table.timeline tr>th:first-child{font-family:var(--mono);font-weight:400;background:#fafbfc}
table.timeline td.absent{color:#b8bfcc;text-align:center}
table.timeline td.m-new{background:var(--new-bg)}
table.timeline td.m-moved{background:var(--moved-bg)}
table.timeline td.is-hidden{background:repeating-linear-gradient(135deg,#fff,#fff 6px,#f7efdc 6px,#f7efdc 12px)}
table.timeline td.is-gone{background:var(--gone-bg)}
table.timeline td.is-gone .mp{text-decoration:line-through}
table.diffs{border-collapse:collapse;font-size:12px;width:100%;margin:6px 0}
table.diffs td,table.diffs th{border:1px solid var(--line);padding:3px 6px;text-align:left;font-family:var(--mono);vertical-align:top;word-break:break-all}
table.diffs th{font-family:inherit;background:#f3f4f7}
`;

const SCRIPT = `
document.querySelectorAll('[data-toggle]').forEach(function(b){b.addEventListener('click',function(){
  var open=b.getAttribute('data-toggle')==='open';
  document.querySelectorAll('.node details').forEach(function(d){d.open=open;});
});});
`;

function page(title: string, meta: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header class="page"><h1>${esc(title)}</h1><div class="meta">${meta}</div></header>
${body}
<script>${SCRIPT}</script>
</body>
</html>
`;
}

function marksHtml(marks: readonly MountMark[]): string {
  return marks.map((m) => `<span class="mark ${m}">${MARK_TEXT[m]}</span>`).join(' ');
}

function legendHtml(): string {
  return `<div class="legend">${(Object.keys(MARK_LEGEND) as MountMark[])
    .map((m) => `<span title="${esc(MARK_LEGEND[m])}">${marksHtml([m])} ${esc(LEGEND_SHORT[m])}</span>`)
    .join('')}</div>`;
}

function nodeHtml(n: MountNode, byId: Map<number, MountNode>, differs: Set<string>): string {
  const cls = ['node', ...n.marks.map((m) => `m-${m}`)];
  if (n.hidden) cls.push('is-hidden');
  if (n.gone) cls.push('is-gone');
  if (!n.entry) cls.push('unknown');
  const e = n.entry;
  if (e && differs.has(e.mountPoint)) cls.push('differs');
  const notes: string[] = [];
  if (!n.listed && !n.gone) notes.push(e ? 'not listed in this stage (outside the probe’s root)' : 'not listed: known only as a parent id');
  if (n.hidden && n.hiddenBelow !== undefined) {
    const over = byId.get(n.hiddenBelow)?.entry;
    notes.push(`below mount ${num(n.hiddenBelow)}${over ? ` (${over.fsType} at ${over.mountPoint})` : ''}`);
  }
  if (n.before) notes.push(`was at ${n.before.mountPoint}, parent ${n.before.parentId}`);
  let head: string;
  if (e) {
    head = `<span class="mp">${esc(e.mountPoint)}</span><span class="fs">${esc(e.fsType)}</span><span class="src">${esc(e.source)}</span><span class="mid">id ${num(n.mountId)}</span>`;
  } else {
    head = `<span class="mp">mount ${num(n.mountId)}</span>`;
  }
  const detail = e
    ? `<details><summary>options</summary><dl>` +
      `<dt>options</dt><dd>${esc(e.options)}</dd>` +
      `<dt>super options</dt><dd>${esc(e.superOptions)}</dd>` +
      `<dt>propagation</dt><dd>${e.optionalFields.length ? esc(e.optionalFields.join(' ')) : 'private'}</dd>` +
      `<dt>root</dt><dd>${esc(e.root)}</dd>` +
      `<dt>device</dt><dd>${num(e.major)}:${num(e.minor)}</dd>` +
      `<dt>parent</dt><dd>${e.parentId === e.mountId ? 'itself (top of the tree)' : num(e.parentId)}</dd>` +
      `</dl></details>`
    : '';
  const attrs = `data-mount-id="${num(n.mountId)}" data-marks="${n.marks.join(' ')}" data-listed="${n.listed}" data-hidden="${n.hidden}"`;
  const children = n.children.length ? `<ul>${n.children.map((c) => nodeHtml(c, byId, differs)).join('')}</ul>` : '';
  return `<li class="mount" ${attrs}><div class="${cls.join(' ')}">${head} ${marksHtml(n.marks)}${notes.map((t) => `<span class="note">${esc(t)}</span>`).join('')}${detail}</div>${children}</li>`;
}

export function treeHtml(t: StageTree, differs: Set<string> = new Set()): string {
  const byId = new Map(t.nodes.map((n) => [n.mountId, n]));
  return `<ul class="tree">${t.roots.map((n) => nodeHtml(n, byId, differs)).join('')}</ul>`;
}

function linkHtml(l: LinkText | null): string {
  if (!l) return '<span class="sub">-</span>';
  const decos = [
    l.unreachable ? `<span class="deco unreachable">(unreachable)</span>` : '',
    l.deleted ? `<span class="deco deleted">(deleted)</span>` : '',
  ].join('');
  return `<span class="link${l.deleted ? ' deleted' : ''}" title="${esc(l.text)}">${esc(l.path).replaceAll('/', '/<wbr>')}</span>${decos}`;
}

function processHtml(stage: StageJSON, previous?: StageJSON): string {
  const rows = processRows(stage, previous);
  const row = (r: (typeof rows)[number]): string => {
    const p = r.proc;
    const cell = (k: 'exe' | 'cwd' | 'root'): string => {
      const changed = k in r.changed;
      const was = changed ? `<span class="was">${esc(r.changed[k] ?? '-')}</span>` : '';
      return `<td class="link-cell${changed ? ' changed' : ''}">${linkHtml(r.links[k])}${was}</td>`;
    };
    const cls = [p.probe ? 'probe' : '', p.pid === 1 ? 'pid1' : ''].filter(Boolean).join(' ');
    const cmd = p.cmdline.length ? p.cmdline.join(' ').trimEnd() : `[${p.comm}]`;
    return `<tr class="${cls}" data-pid="${num(p.pid)}"><td class="n">${num(p.pid)}</td><td class="n">${num(p.ppid)}</td><td class="n">${esc(p.comm)}${p.probe ? ' <span class="sub">probe</span>' : ''}${r.new && !p.probe ? ' <span class="mark new">new</span>' : ''}</td><td class="cmd" title="${esc(cmd)}">${esc(cmd)}</td>${cell('exe')}${cell('cwd')}${cell('root')}</tr>`;
  };
  const head = '<tr><th>pid</th><th>ppid</th><th>comm</th><th>command line</th><th>exe</th><th>cwd</th><th>root</th></tr>';
  const user = rows.filter((r) => !r.kernelThread);
  const kthreads = rows.filter((r) => r.kernelThread);
  const k = kthreads.length
    ? `<details class="kthreads"><summary>${kthreads.length} kernel threads</summary><table class="procs">${head}${kthreads.map(row).join('')}</table></details>`
    : '';
  return `<div class="procwrap"><table class="procs">${head}${user.map(row).join('')}</table></div>${k}`;
}

function stageHtml(run: number, t: StageTree, stage: StageJSON, previous: StageJSON | undefined, differs?: Set<string>): string {
  const vars = Object.entries(stage.vars ?? {});
  const cmds = Object.entries(stage.commands ?? {});
  const extra = [
    vars.length
      ? `<details class="raw"><summary>${vars.length} recorded values</summary><pre>${vars.map(([k, v]) => `${esc(k)}=${esc(v)}`).join('\n')}</pre></details>`
      : '',
    cmds.length
      ? `<details class="raw"><summary>${cmds.length} commands</summary>${cmds.map(([k, c]) => `<pre><b>${esc(k)}</b> (exit ${num(c.status)})\n${esc(c.output)}</pre>`).join('')}</details>`
      : '',
    `<details class="raw"><summary>raw mountinfo</summary><pre>${esc(stage.mountinfo.map((e) => e.raw).join('\n'))}</pre></details>`,
  ].join('');
  const since = t.previous ? `changes since <i>${esc(t.previous)}</i>` : 'first stage';
  // PID 1 reads its own mountinfo: other ids mean another mount namespace (or a view from another root).
  const ids = (m: readonly { mountId: number }[]) =>
    m
      .map((e) => e.mountId)
      .sort((x, y) => x - y)
      .join(' ');
  const pid1 = stage.pid1Mountinfo ?? [];
  const otherView =
    pid1.length > 0 && ids(pid1) !== ids(stage.mountinfo)
      ? `<details class="raw pid1"><summary>PID 1 sees another mount table (${pid1.length} mounts): another mount namespace or root</summary><pre>${esc(pid1.map((e) => e.raw).join('\n'))}</pre></details>`
      : '';
  return `<section class="stage" id="run-${run}-stage-${num(t.seq)}-${esc(slug(t.stage))}" data-stage="${esc(t.stage)}">
<h3>stage ${esc(t.stage)} <span class="sub">${since}${stage.uptime !== null ? ` · ${stage.uptime.toFixed(2)} s after boot` : ''}</span></h3>
<div class="stage-grid"><div>${legendHtml()}${treeHtml(t, differs)}${otherView}</div><div>${processHtml(stage, previous)}${extra}</div></div>
</section>`;
}

/** A kernel spec for a heading: a file: spec by its image's name (the whole spec in the title). */
export function kernelLabel(spec: string): string {
  if (!spec.startsWith('file:')) return esc(spec);
  const image = spec.slice(5).split(',')[0]!;
  return `<span title="${esc(spec)}">file:…/${esc(image.split('/').pop() ?? image)}</span>`;
}

function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]+/g, '_');
}

function consoleHtml(tail: readonly string[], open: boolean, log?: ConsoleLog): string {
  // The run's console.log when the caller read it and it says more than the record's tail.
  const full = log && log.lines.length > tail.length ? log : undefined;
  const lines = full ? full.lines : tail;
  if (!lines.length) return '';
  const body = lines
    .map((l) => {
      const kind = consoleLineKind(l);
      return kind ? `<span class="${kind}">${esc(l)}</span>` : `${esc(l)}\n`;
    })
    .join('');
  const marked = open || lines.some((l) => consoleLineKind(l) === 'panic');
  const what = full
    ? `console: ${full.cut ? `last ${lines.length} lines` : `all ${lines.length} lines`} of <code>${esc(full.path)}</code>`
    : `console: last ${lines.length} lines`;
  return `<details class="console"${marked ? ' open' : ''}><summary>${what}</summary><pre class="console" data-console-lines="${lines.length}">${body}</pre></details>`;
}

/** The kernel's reports of bugs it survived (the record's kernelReports), each with its frames, marked as a panic is. */
function kernelReportsHtml(reports: readonly KernelReport[] | undefined): string {
  if (!reports?.length) return '';
  const items = reports.map(
    (k) =>
      `<li class="kreport" data-kind="${esc(k.kind)}"><span class="kkind">${esc(k.kind)}</span><span class="ktitle">${esc(k.title)}</span>` +
      `${k.frames.length ? `<pre class="frames">${k.frames.map(esc).join('\n')}</pre>` : ''}` +
      `<div class="kline">${esc(k.line)}</div></li>`,
  );
  return `<div class="kreports" data-kernel-reports="${reports.length}"><h4>the kernel reported ${reports.length === 1 ? 'a bug' : `${reports.length} bugs`} it survived</h4><ol>${items.join('')}</ol></div>`;
}

function changeCounts(t: StageTree): string {
  const c: Partial<Record<MountMark, number>> = {};
  for (const n of t.nodes) for (const m of n.marks) c[m] = (c[m] ?? 0) + 1;
  const parts = (Object.keys(MARK_LEGEND) as MountMark[]).filter((m) => c[m]).map((m) => `${c[m]} ${m}`);
  return parts.length ? parts.join(', ') : t.previous ? 'no change' : `${t.nodes.length} mounts`;
}

export interface HtmlOptions {
  /** More of a run's console than its record's tail (its artifacts' console.log: artifactConsoleLog). */
  consoleLog?: (r: RunRecord) => ConsoleLog | undefined;
}

/** One run: verdict, message, kernel reports, behaviours, evidence, then every stage and the console. */
export function runHtml(r: RunRecord, index: number, opts: HtmlOptions = {}): string {
  const trees = runTrees(r.stages);
  const verdict = `<span class="verdict ${esc(r.outcome)}">${esc(r.outcome === 'passed' ? 'PASS' : r.outcome.toUpperCase())}</span>`;
  const facts = [
    ...r.behaviours.map((b) => `<li class="behaviour">behaviour: ${esc(b)}</li>`),
    ...r.evidence.map((e) => `<li>${esc(e)}</li>`),
    ...r.warnings.map((w) => `<li>warning: ${esc(w)}</li>`),
  ];
  const attempts =
    r.attempts && r.attempts.length > 1
      ? `<ul class="facts">${r.attempts.map((a, i) => `<li>attempt ${i + 1}: ${esc(a.outcome)}${a.message ? ` - ${esc(a.message.split('\n')[0])}` : ''}</li>`).join('')}</ul>`
      : '';
  const story = trees.length
    ? `<div class="story">${trees.map((t) => `<a href="#run-${index}-stage-${num(t.seq)}-${esc(slug(t.stage))}">${esc(t.stage)}<span class="counts">${esc(changeCounts(t))}</span></a>`).join('')}</div>`
    : '';
  const stages = trees.map((t, i) => stageHtml(index, t, r.stages[i]!, i > 0 ? r.stages[i - 1] : undefined)).join('\n');
  return `<section class="run" id="run-${index}" data-run="${index}" data-scenario="${esc(r.scenario)}" data-kernel="${esc(r.kernel)}" data-outcome="${esc(r.outcome)}">
<h2>${verdict}${r.flaky ? '<span class="flaky">flaky</span>' : ''} ${esc(r.scenario)} <span class="sub">on ${kernelLabel(r.kernel)} (${esc(r.kernelRelease)}, ${esc(r.accel)}, ${esc(r.firmware ?? 'bios')}${r.boot ? ` via ${esc(r.boot)}` : ''}, ${(r.durationMs / 1000).toFixed(1)} s)</span>
<span class="tools"><button type="button" data-toggle="open">show all options</button> <button type="button" data-toggle="close">hide</button></span></h2>
${r.message ? `<pre class="message">${esc(r.message)}</pre>` : ''}
${kernelReportsHtml(r.kernelReports)}
${facts.length ? `<ul class="facts">${facts.join('')}</ul>` : ''}${attempts}
${r.outcome !== 'passed' ? `<div class="sub">rerun: <code>${esc(r.rerun)}</code>${r.artifacts ? ` · artifacts: <code>${esc(r.artifacts.dir)}</code>` : ''}</div>` : ''}
${story}
${timelineHtml(trees)}
${stages}
${consoleHtml(r.consoleTail, r.outcome !== 'passed' || Boolean(r.kernelReports?.length), opts.consoleLog?.(r))}
</section>`;
}

/**
 * Every mount across the stages, one row each: where it was in each stage and how it changed,
 * so that a root switch reads across a line (rootfs: `/`, then hidden below the ext4).
 */
function timelineHtml(trees: readonly StageTree[]): string {
  if (trees.length < 2) return '';
  const order: number[] = [];
  for (const t of trees) for (const n of t.nodes) if (!order.includes(n.mountId)) order.push(n.mountId);
  const label = new Map<number, string>();
  for (const t of trees)
    for (const n of t.nodes) if (n.entry && !label.has(n.mountId)) label.set(n.mountId, `${n.entry.fsType} ${n.entry.source}`);
  const rows = order.map((id) => {
    const cells = trees.map((t) => {
      const n = t.nodes.find((x) => x.mountId === id);
      if (!n) return '<td class="absent">–</td>';
      const cls = [
        ...n.marks.map((m) => `m-${m}`),
        n.hidden ? 'is-hidden' : '',
        n.gone ? 'is-gone' : '',
        !n.listed && !n.gone ? 'unlisted' : '',
      ]
        .filter(Boolean)
        .join(' ');
      const where = n.entry ? esc(n.entry.mountPoint) : '?';
      const state =
        n.gone || n.marks.includes('hidden')
          ? ''
          : n.hidden
            ? ' <span class="sub">hidden</span>'
            : !n.listed
              ? ' <span class="sub">not listed</span>'
              : '';
      return `<td class="${cls}" data-marks="${n.marks.join(' ')}"><span class="mp">${where}</span>${state} ${marksHtml(n.marks)}</td>`;
    });
    return `<tr data-mount-id="${id}"><th><span class="mid">id ${id}</span> ${esc(label.get(id) ?? 'not listed in any stage')}</th>${cells.join('')}</tr>`;
  });
  return `<details class="timeline" open><summary>every mount, stage by stage</summary><div class="procwrap"><table class="timeline"><tr><th>mount</th>${trees.map((t) => `<th>${esc(t.stage)}</th>`).join('')}</tr>${rows.join('')}</table></div></details>`;
}

function navHtml(runs: readonly RunRecord[]): string {
  return `<nav class="runs">${runs
    .map(
      (r, i) =>
        `<a href="#run-${i}"><span class="verdict ${esc(r.outcome)}">${r.outcome === 'passed' ? 'PASS' : esc(r.outcome.toUpperCase())}</span> ${esc(r.scenario)} <span class="sub">${kernelLabel(r.kernel)}</span></a>`,
    )
    .join('')}</nav>`;
}

/** The page for a matrix report (`run --html`, `report --html`). */
export function reportHtml(report: Pick<MatrixReport, 'runs'> & Partial<MatrixReport>, opts: HtmlOptions = {}): string {
  const s = report.summary;
  const meta = [
    report.startedAt ? `started ${esc(report.startedAt)}` : '',
    s ? `${s.passed ?? 0} passed, ${(s.total ?? report.runs.length) - (s.passed ?? 0)} not passed` : `${report.runs.length} run(s)`,
    report.accel ? `accel ${esc(report.accel)}` : '',
    report.version ? `rootprobe ${esc(report.version)}` : '',
  ]
    .filter(Boolean)
    .join(' · ');
  const body = `${navHtml(report.runs)}<main>${report.runs.map((r, i) => runHtml(r, i, opts)).join('\n')}</main>`;
  return page('rootprobe report', meta, body);
}

export interface DiffPair {
  scenario: string;
  a: RunRecord;
  b: RunRecord;
  differences: Difference[];
}

/** `diff --html`: per scenario, each stage's tree on both kernels side by side, what differs listed and outlined. */
export function diffHtml(kernels: readonly string[], pairs: readonly DiffPair[]): string {
  const sections = pairs.map((p, i) => {
    const ta = runTrees(p.a.stages);
    const tb = runTrees(p.b.stages);
    const rows = p.differences
      .map((d) => `<tr><td>${esc(d.where || 'run')}</td><td>${esc(d.what)}</td><td>${esc(d.a)}</td><td>${esc(d.b)}</td></tr>`)
      .join('');
    const table = p.differences.length
      ? `<table class="diffs"><tr><th>where</th><th>what</th><th>${kernelLabel(p.a.kernel)}</th><th>${kernelLabel(p.b.kernel)}</th></tr>${rows}</table>`
      : '<p class="sub">no differences in the readback</p>';
    const names = [...new Set([...p.a.stages.map((s) => s.name), ...p.b.stages.map((s) => s.name)])];
    const stages = names.map((name) => {
      const differs = new Set(
        p.differences
          .filter((d) => d.where === `stage ${name}` && d.what.startsWith('mount '))
          .map((d) => d.what.slice(6).replace(/ #\d+$/, '')),
      );
      const side = (r: RunRecord, trees: StageTree[]): string => {
        const j = r.stages.map((s) => s.name).lastIndexOf(name);
        if (j < 0)
          return `<div><h4 data-kernel="${esc(r.kernel)}">${kernelLabel(r.kernel)}</h4><p class="sub">stage not reported</p></div>`;
        return `<div><h4 data-kernel="${esc(r.kernel)}">${kernelLabel(r.kernel)} <span class="sub">${esc(r.kernelRelease)}</span></h4>${treeHtml(trees[j]!, differs)}</div>`;
      };
      return `<section class="stage" data-stage="${esc(name)}"><h3>stage ${esc(name)}</h3>${legendHtml()}<div class="side">${side(p.a, ta)}${side(p.b, tb)}</div></section>`;
    });
    return `<section class="run" id="run-${i}" data-scenario="${esc(p.scenario)}"><h2>${esc(p.scenario)} <span class="sub">${kernelLabel(p.a.kernel)} vs ${kernelLabel(p.b.kernel)}</span></h2>
<div class="side"><div><span class="verdict ${esc(p.a.outcome)}">${esc(p.a.outcome)}</span> ${kernelLabel(p.a.kernel)}</div><div><span class="verdict ${esc(p.b.outcome)}">${esc(p.b.outcome)}</span> ${kernelLabel(p.b.kernel)}</div></div>
${table}${stages.join('\n')}</section>`;
  });
  const short = (k: string) => (k.startsWith('file:') ? `file:…/${k.slice(5).split(',')[0]!.split('/').pop()}` : k);
  return page(`rootprobe diff: ${kernels.map(short).join(' vs ')}`, `${pairs.length} scenario(s)`, `<main>${sections.join('\n')}</main>`);
}
