// Unit tests of the message renderer (src/markdown.ts), compiled to
// .unit/ by `npm test`. The renderer returns Preact nodes; `html` below
// prints them the way the DOM would hold them, text escaped.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plainPreview, renderMarkdown, safeUrl } from '../.unit/markdown.js';

const ctx = { mention: (name) => (name === 'alice' ? 'me' : name === 'bob' ? 'other' : null) };

function html(node) {
  if (Array.isArray(node)) return node.map(html).join('');
  if (node == null || node === false) return '';
  if (typeof node !== 'object') return String(node).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const { children, ...attrs } = node.props ?? {};
  const text = Object.entries(attrs)
    .map(([k, v]) => ` ${k}="${v}"`)
    .join('');
  return `<${node.type}${text}>${html(children)}</${node.type}>`;
}

const render = (text) => html(renderMarkdown(text, ctx));
const LINK = 'target="_blank" rel="noopener noreferrer nofollow ugc"';

test('HTML in a message is text, never markup', () => {
  for (const text of [
    '<script>alert(1)</script>',
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '<style>*{display:none}</style>',
  ]) {
    const out = render(text);
    assert.ok(!/<(script|img|a|style)\b/.test(out), out);
  }
  assert.equal(render('<b>hi</b>'), '<p>&lt;b>hi&lt;/b></p>');
});

test('links only to http, https and mailto', () => {
  assert.equal(render('[ok](https://x.com/a_b)'), `<p><a href="https://x.com/a_b" ${LINK}>ok</a></p>`);
  for (const bad of ['javascript:alert(1)', 'data:text/html,<b>', 'vbscript:x', 'JaVaScRiPt:alert(1)', '//evil.com']) {
    assert.ok(!render(`[x](${bad})`).includes('<a '), bad);
  }
  assert.equal(safeUrl('javascript:alert(1)'), null);
  assert.equal(safeUrl(' https://x.com'), 'https://x.com/');
  assert.equal(
    render('see https://example.com/a_(b), then.'),
    `<p>see <a href="https://example.com/a_(b)" ${LINK}>https://example.com/a_(b)</a>, then.</p>`,
  );
});

test('the inline subset', () => {
  const cases = [
    ['**bold** *em* _em_ ~~gone~~ `co*de*`', '<p><strong>bold</strong> <em>em</em> <em>em</em> <s>gone</s> <code>co*de*</code></p>'],
    ['snake_case_name and a * b * c', '<p>snake_case_name and a * b * c</p>'],
    ['\\*not em\\* and ``a ` b``', '<p>*not em* and <code>a ` b</code></p>'],
    ['**unclosed and *also', '<p>**unclosed and *also</p>'],
    ['line one\nline two', '<p>line one<br></br>line two</p>'],
  ];
  for (const [input, want] of cases) assert.equal(render(input), want, input);
});

test('blocks: code, quotes, lists', () => {
  assert.equal(render('```\n<b>x</b>\n*y*\n```'), '<pre><code>&lt;b>x&lt;/b>\n*y*</code></pre>');
  assert.equal(render('> **q**\n> r\nafter'), '<blockquote><p><strong>q</strong><br></br>r</p></blockquote><p>after</p>');
  assert.equal(render('- a\n- b\n\n3. c\n4. d'), '<ul><li>a</li><li>b</li></ul><ol start="3"><li>c</li><li>d</li></ol>');
});

test('mentions are marked only when the message names them', () => {
  assert.equal(
    render('hi @alice. and @bob, not @carol or a@alice'),
    '<p>hi <span class="mention me">@alice</span>. and <span class="mention">@bob</span>, not @carol or a@alice</p>',
  );
});

test('hostile input renders in linear time', () => {
  for (const unit of ['*a ', '_a ', '`a ', '[a](', '**', '*_~`[', '> ', 'https://', '@bob ']) {
    const text = unit.repeat(Math.ceil(16_384 / unit.length));
    const start = performance.now();
    renderMarkdown(text, ctx);
    const ms = performance.now() - start;
    // Quadratic behaviour on 16 KiB would take seconds; a generous bound
    // keeps slow CI machines from flaking.
    assert.ok(ms < 1_000, `${JSON.stringify(unit)}: ${ms.toFixed(0)} ms`);
  }
});

test('previews flatten and shorten', () => {
  assert.equal(plainPreview('a\n\n```\ncode\n```\nb'), 'a [code] b');
  assert.equal(plainPreview('x'.repeat(200), 10), 'xxxxxxxxx…');
});

test('headings, spoilers and :shortcode: emoji', () => {
  assert.equal(render('# Big\n## Mid\n### *Small*'), '<h3 class="md-heading">Big</h3><h4 class="md-heading">Mid</h4><h5 class="md-heading"><em>Small</em></h5>');
  assert.equal(render('#nohash and #### four'), '<p>#nohash and #### four</p>');
  const spoiled = renderMarkdown('the end: ||he **was** the cat|| ok', ctx)[0].props.children;
  const spoiler = spoiled.find((n) => typeof n === 'object' && n.props.class === 'spoiler');
  assert.equal(html(spoiler.props.children), 'he <strong>was</strong> the cat');
  assert.equal(spoiler.props.role, 'button');
  assert.equal(render('a || b'), '<p>a || b</p>');
  assert.equal(
    render('nice :thumbs_up: :not_an_emoji: :smile:'),
    '<p>nice <span class="emoji" title=":thumbs_up:" role="img" aria-label="thumbs up">👍</span> :not_an_emoji: <span class="emoji" title=":smile:" role="img" aria-label="smile">😄</span></p>',
  );
  assert.equal(render('`:smile:`'), '<p><code>:smile:</code></p>');
});
