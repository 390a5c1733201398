import fc from 'fast-check';
import { prescanXml, XmlRefusedError, type XmlLimits } from './xml-limits.js';

interface Tree {
  attributes: number;
  text: string;
  children: Tree[];
}

function serialize(tree: Tree): string {
  const attrs = Array.from({ length: tree.attributes }, (_, i) => ` a${i}="v"`).join('');
  return `<e${attrs}>${tree.text}${tree.children.map(serialize).join('')}</e>`;
}

function measure(tree: Tree): { depth: number; elements: number; attributes: number; text: number } {
  const kids = tree.children.map(measure);
  return {
    depth: 1 + Math.max(0, ...kids.map((k) => k.depth)),
    elements: 1 + kids.reduce((n, k) => n + k.elements, 0),
    attributes: tree.attributes + kids.reduce((n, k) => n + k.attributes, 0),
    // Each attribute value is one character ("v").
    text: tree.text.length + tree.attributes + kids.reduce((n, k) => n + k.text, 0),
  };
}

const node = (children: fc.Arbitrary<Tree[]>): fc.Arbitrary<Tree> =>
  fc.record({ attributes: fc.nat({ max: 3 }), text: fc.stringMatching(/^[a-z ]{0,6}$/), children });
const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', maxDepth: 8 },
    node(fc.constant([])),
    node(fc.array(tie('tree'), { maxLength: 3 })),
  ),
}));

const limits: XmlLimits = { maxDepth: 5, maxElements: 12, maxAttributes: 10, maxTextChars: 40 };

describe('prescanXml', () => {
  it('accepts a document exactly when it is within every limit (property)', () => {
    fc.assert(
      fc.property(tree, (t) => {
        const m = measure(t);
        const within =
          m.depth <= limits.maxDepth &&
          m.elements <= limits.maxElements &&
          m.attributes <= limits.maxAttributes &&
          m.text <= limits.maxTextChars;
        let accepted = true;
        try {
          prescanXml(serialize(t), limits);
        } catch (error) {
          if (!(error instanceof XmlRefusedError) || error.code === 'malformed') throw error;
          accepted = false;
        }
        expect(accepted).toBe(within);
      }),
      { seed: 8, numRuns: 500 },
    );
  });

  it.each([
    ['a DOCTYPE', '<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>', 'dtd_forbidden'],
    ['an undeclared entity', '<r>&x;</r>', 'malformed'],
    ['two roots', '<r/><s/>', 'malformed'],
    ['an unclosed element', '<r><s></r>', 'malformed'],
  ])('refuses %s', (_label, xml, code) => {
    expect(() => prescanXml(xml, limits)).toThrow(expect.objectContaining({ code }));
  });

  it('stops at the first limit crossed on a document 50,000 deep', () => {
    const deep = '<a>'.repeat(50_000) + '</a>'.repeat(50_000);
    expect(() => prescanXml(deep, limits)).toThrow(expect.objectContaining({ code: 'too_deep' }));
  });
});
