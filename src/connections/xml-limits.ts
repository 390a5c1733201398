import { SaxesParser } from 'saxes';

/**
 * Bounded parsing: a streaming pre-scan that every XML document from outside
 * (a POSTed SAMLResponse, IdP metadata) passes before any DOM is built. A DOM
 * parser, canonicalisation and XPath are all at least linear in the number of
 * nodes and recursive in depth, so a 500 KiB document nested 50,000 deep
 * costs seconds of CPU per request (issue 8, defect 3); the scan costs one
 * linear pass with constant memory and stops at the first limit crossed.
 *
 * saxes (the SAX parser behind jsdom) rather than a hand-written tokenizer:
 * it is a conforming XML 1.0 parser, so what it counts is what a DOM would
 * build. It does not process DTDs, and a DOCTYPE is refused outright (entity
 * expansion and external entities are never wanted in SAML or metadata).
 */

export interface XmlLimits {
  /** Deepest element nesting (the document element is depth 1). */
  maxDepth: number;
  /** Elements in the whole document. */
  maxElements: number;
  /** Attributes (namespace declarations included) in the whole document. */
  maxAttributes: number;
  /** Characters of text, CDATA, comments, PIs and attribute values together. */
  maxTextChars: number;
}

/** Which limit a document crossed: the suffix of its reason code (`saml_xml_too_deep`…). */
export type XmlLimitViolation = 'too_deep' | 'too_many_elements' | 'too_many_attributes' | 'too_much_text';

export class XmlRefusedError extends Error {
  constructor(
    /** A limit crossed, or `malformed` / `dtd_forbidden`. */
    readonly code: XmlLimitViolation | 'malformed' | 'dtd_forbidden',
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'XmlRefusedError';
  }
}

/** Defaults when no configuration is at hand (the config's GATEHOUSE_XML_* defaults are the same). */
export const DEFAULT_XML_LIMITS: XmlLimits = {
  maxDepth: 64,
  maxElements: 20_000,
  maxAttributes: 40_000,
  maxTextChars: 4 * 1024 * 1024,
};

/**
 * Scans `xml` once; throws XmlRefusedError at the first limit crossed, on a
 * DOCTYPE, or when the document is not well-formed. Returns nothing: the
 * caller parses with its DOM parser afterwards, knowing the size is bounded.
 */
export function prescanXml(xml: string, limits: XmlLimits): void {
  const parser = new SaxesParser({ position: false });
  let depth = 0;
  let elements = 0;
  let attributes = 0;
  let text = 0;
  const addText = (n: number) => {
    text += n;
    if (text > limits.maxTextChars)
      throw new XmlRefusedError('too_much_text', `more than ${limits.maxTextChars} characters`);
  };
  parser.on('doctype', () => {
    throw new XmlRefusedError('dtd_forbidden', 'a DOCTYPE is never parsed');
  });
  parser.on('opentagstart', () => {
    depth += 1;
    elements += 1;
    if (depth > limits.maxDepth)
      throw new XmlRefusedError('too_deep', `nested deeper than ${limits.maxDepth} elements`);
    if (elements > limits.maxElements)
      throw new XmlRefusedError('too_many_elements', `more than ${limits.maxElements} elements`);
  });
  parser.on('attribute', (attribute) => {
    attributes += 1;
    if (attributes > limits.maxAttributes)
      throw new XmlRefusedError('too_many_attributes', `more than ${limits.maxAttributes} attributes`);
    addText(attribute.value.length);
  });
  parser.on('closetag', () => {
    depth -= 1;
  });
  parser.on('text', (t) => addText(t.length));
  parser.on('cdata', (t) => addText(t.length));
  parser.on('comment', (t) => addText(t.length));
  parser.on('processinginstruction', (pi) => addText(pi.target.length + pi.body.length));
  parser.on('error', (error) => {
    throw new XmlRefusedError('malformed', error.message.split('\n')[0] ?? 'not well-formed');
  });
  try {
    parser.write(xml).close();
  } catch (error) {
    if (error instanceof XmlRefusedError) throw error;
    throw new XmlRefusedError('malformed', error instanceof Error ? error.message : String(error));
  }
}
