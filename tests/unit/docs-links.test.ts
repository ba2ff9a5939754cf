/**
 * The documentation stays self-contained: every relative link in README.md and docs/*.md names a
 * file or folder of this repository (and a heading, when it has an anchor), nothing points outside
 * it, and the README stays a short front door.
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const README = path.join(ROOT, 'README.md');
const README_MAX_LINES = 150;

const pages = [README, ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join(ROOT, 'docs', f))];

/** The text outside fenced code blocks and inline code, where Markdown links live. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** Inline links and images `[text](target "title")`, and reference definitions `[id]: target`. */
export function linkTargets(markdown: string): string[] {
  const text = prose(markdown);
  const inline = [...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const references = [...text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/gm)].map((m) => m[1]!);
  return [...inline, ...references];
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const withoutCode = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const match of withoutCode.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = match[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

const relativeLinks = pages.flatMap((page) =>
  linkTargets(fs.readFileSync(page, 'utf8'))
    .filter((target) => !isExternal(target))
    .map((target) => ({ page: path.relative(ROOT, page), target })),
);

describe('the documentation links', () => {
  test('README.md and every docs page are found, and they contain relative links to check', () => {
    expect(pages.map((page) => path.relative(ROOT, page))).toEqual(
      expect.arrayContaining(['README.md', 'docs/api.md', 'docs/architecture.md', 'docs/operations.md', 'docs/load-testing.md', 'docs/embedded-mongodb.md']),
    );
    expect(relativeLinks.length).toBeGreaterThan(0);
  });

  test.each(relativeLinks)('$page → $target names a file of this repository, and a heading when it has an anchor', ({ page, target }) => {
    const [file, anchor] = target.split('#', 2) as [string, string | undefined];
    const resolved = file === '' ? path.join(ROOT, page) : path.resolve(path.dirname(path.join(ROOT, page)), decodeURIComponent(file));
    const inside = path.relative(ROOT, resolved);
    expect(inside.startsWith('..') || path.isAbsolute(inside) ? `${target} leaves the repository` : 'inside').toBe('inside');
    expect(fs.existsSync(resolved) ? 'exists' : `${target} does not exist`).toBe('exists');
    if (anchor !== undefined) {
      expect(resolved.endsWith('.md')).toBe(true);
      expect([...headingAnchors(fs.readFileSync(resolved, 'utf8'))]).toContain(anchor);
    }
  });
});

describe('the README', () => {
  const readme = fs.readFileSync(README, 'utf8');

  test(`is at most ${README_MAX_LINES} lines`, () => {
    expect(readme.split('\n').length - (readme.endsWith('\n') ? 1 : 0)).toBeLessThanOrEqual(README_MAX_LINES);
  });

  test('refers to nothing above the repository', () => {
    expect(readme).not.toContain('../');
  });
});

describe('the link and anchor parsing', () => {
  test('finds inline links, images and reference definitions, but not links inside code', () => {
    const markdown = ['See [api](docs/api.md#errors) and ![chart](a.svg "title").', '`[not](code.md)`', '```', '[nor](fenced.md)', '```', '[ref]: other.md'].join('\n');
    expect(linkTargets(markdown)).toEqual(['docs/api.md#errors', 'a.svg', 'other.md']);
  });

  test('makes anchors the way GitHub does, numbering repeated headings', () => {
    const anchors = headingAnchors('# Claim cost: `npm run bench`\n## Limits that protect a public deployment\n## Limits\n## Limits\n');
    expect([...anchors]).toEqual(['claim-cost-npm-run-bench', 'limits-that-protect-a-public-deployment', 'limits', 'limits-1']);
  });
});
