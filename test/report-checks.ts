/**
 * Checks of report formats for the tests: a small XML reader (well-formedness: balanced tags,
 * quoted attributes, known entities, one root), the JUnit structure and counts, TAP 13.
 */
import { expect } from 'chai';

// A small XML reader: enough to prove a JUnit document well-formed (balanced tags, quoted
// attributes, known entities, one root) and to walk its elements.

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

function unescapeXml(s: string, where: string): string {
  return s.replace(/&([^;]*);/g, (_, e: string) => {
    const known: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (e in known) return known[e];
    if (/^#\d+$/.test(e)) return String.fromCodePoint(Number(e.slice(1)));
    if (/^#x[0-9a-fA-F]+$/.test(e)) return String.fromCodePoint(parseInt(e.slice(2), 16));
    throw new Error(`unknown entity &${e}; in ${where}`);
  });
}

export function parseXml(doc: string): XmlElement {
  let s = doc.replace(/^<\?xml[^?]*\?>\s*/, '');
  const top: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlElement[] = [top];
  const tag = /^<(\/?)([A-Za-z_][-A-Za-z0-9_.:]*)((?:\s+[A-Za-z_][-A-Za-z0-9_.:]*\s*=\s*"[^"<]*")*)\s*(\/?)>/;
  while (s.length > 0) {
    const lt = s.indexOf('<');
    const text = lt < 0 ? s : s.slice(0, lt);
    if (text) {
      if (/[<>]/.test(text.replace(/&gt;/g, ''))) throw new Error(`stray markup in text: ${text.slice(0, 80)}`);
      stack[stack.length - 1].text += unescapeXml(text, stack[stack.length - 1].name);
    }
    if (lt < 0) break;
    s = s.slice(lt);
    const m = tag.exec(s);
    if (!m) throw new Error(`malformed tag at: ${s.slice(0, 80)}`);
    const [all, close, name, attrText, selfClose] = m;
    if (close) {
      const open = stack.pop()!;
      if (open.name !== name) throw new Error(`</${name}> closes <${open.name}>`);
    } else {
      const attrs: Record<string, string> = {};
      for (const a of attrText.matchAll(/([A-Za-z_][-A-Za-z0-9_.:]*)\s*=\s*"([^"]*)"/g)) {
        if (a[1] in attrs) throw new Error(`attribute ${a[1]} twice on <${name}>`);
        attrs[a[1]] = unescapeXml(a[2], name);
      }
      const el: XmlElement = { name, attrs, children: [], text: '' };
      stack[stack.length - 1].children.push(el);
      if (!selfClose) stack.push(el);
    }
    s = s.slice(all.length);
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  if (top.children.length !== 1 || top.text.trim()) throw new Error('not exactly one root element');
  return top.children[0];
}

/** Checks a JUnit document's structure and counts; returns its testcases. */
export function checkJUnit(doc: string): Array<{ suite: string; name: string; failure?: XmlElement; error?: XmlElement; out?: string }> {
  const rootEl = parseXml(doc);
  expect(rootEl.name).to.equal('testsuites');
  const cases: ReturnType<typeof checkJUnit> = [];
  let tests = 0;
  let failures = 0;
  let errors = 0;
  for (const suite of rootEl.children) {
    expect(suite.name).to.equal('testsuite');
    const tc = suite.children.filter((c) => c.name === 'testcase');
    expect(tc.length, `tests= of suite ${suite.attrs.name}`).to.equal(Number(suite.attrs.tests));
    const f = tc.filter((c) => c.children.some((x) => x.name === 'failure')).length;
    const e = tc.filter((c) => c.children.some((x) => x.name === 'error')).length;
    expect(f, 'failures=').to.equal(Number(suite.attrs.failures));
    expect(e, 'errors=').to.equal(Number(suite.attrs.errors));
    expect(Number(suite.attrs.time)).to.be.at.least(0);
    tests += tc.length;
    failures += f;
    errors += e;
    for (const c of tc) {
      expect(c.attrs.name, 'testcase name').to.be.a('string').and.not.equal('');
      expect(c.attrs.classname, 'testcase classname').to.be.a('string');
      expect(Number.isFinite(Number(c.attrs.time))).to.equal(true);
      for (const x of c.children) expect(['failure', 'error', 'system-out', 'skipped']).to.include(x.name);
      cases.push({
        suite: suite.attrs.name,
        name: c.attrs.name,
        failure: c.children.find((x) => x.name === 'failure'),
        error: c.children.find((x) => x.name === 'error'),
        out: c.children.find((x) => x.name === 'system-out')?.text,
      });
    }
  }
  expect(tests, 'testsuites tests=').to.equal(Number(rootEl.attrs.tests));
  expect(failures, 'testsuites failures=').to.equal(Number(rootEl.attrs.failures));
  expect(errors, 'testsuites errors=').to.equal(Number(rootEl.attrs.errors));
  return cases;
}

/** Checks TAP 13: the plan, numbering, ok/not ok count, YAML blocks; returns the test lines. */
export function checkTap(text: string): Array<{ ok: boolean; n: number; desc: string }> {
  const lines = text.split('\n');
  expect(lines[0]).to.equal('TAP version 13');
  const plan = /^1\.\.(\d+)$/.exec(lines[1]);
  expect(plan, 'plan line').to.not.equal(null);
  const tests: Array<{ ok: boolean; n: number; desc: string }> = [];
  let inYaml = false;
  for (const l of lines.slice(2)) {
    if (l === '') continue;
    if (inYaml) {
      if (l === '  ...') inYaml = false;
      else expect(l.startsWith('  '), `YAML line indented: ${l}`).to.equal(true);
      continue;
    }
    if (l === '  ---') {
      inYaml = true;
      continue;
    }
    const m = /^(ok|not ok) (\d+) - (.+)$/.exec(l);
    expect(m, `a test line: ${l}`).to.not.equal(null);
    tests.push({ ok: m![1] === 'ok', n: Number(m![2]), desc: m![3] });
  }
  expect(inYaml, 'YAML block closed').to.equal(false);
  expect(tests.length, 'ok + not ok lines = plan').to.equal(Number(plan![1]));
  expect(tests.map((t) => t.n)).to.deep.equal(tests.map((_, i) => i + 1));
  return tests;
}
