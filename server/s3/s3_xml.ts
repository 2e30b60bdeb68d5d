/**
 * Reading S3's XML answers: the few flat shapes S3 sends (`<Error>`,
 * `<ListBucketResult>`, `<InitiateMultipartUploadResult>`, `<ListPartsResult>`,
 * `<ListMultipartUploadsResult>`, `<CopyObjectResult>`), whose values are
 * text in named elements, some repeated in blocks (`<Contents>`, `<Part>`).
 * No general XML parser: elements are found by name, text is unescaped.
 * And writing the one body dfos sends, `<CompleteMultipartUpload>`.
 *
 * @module
 */

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/**
 * Unescapes XML text: the five named entities and numeric references.
 *
 * @example Usage
 * ```ts
 * import { unescapeXml } from "./s3_xml.ts";
 * if (unescapeXml("a &amp; &quot;b&quot; &#x41;") !== 'a & "b" A') throw new Error("not unescaped");
 * ```
 *
 * @param text Text from between tags.
 * @returns The text it stands for.
 */
export function unescapeXml(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, name: string) => {
    if (name.startsWith("#x")) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(parseInt(name.slice(1), 10));
    return ENTITIES[name] ?? whole;
  });
}

/** Escapes text for an XML element. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos" }[c]};`);
}

/**
 * Returns the inner XML of every `<tag>` element, in order (not nested
 * elements of the same name, which S3's shapes do not have).
 *
 * @param xml The document or a block of it.
 * @param tag The element's name.
 * @returns The inner XML of each.
 */
export function xmlBlocks(xml: string, tag: string): string[] {
  const blocks: string[] = [];
  const open = new RegExp(`<${tag}(?:\\s[^>]*)?(/?)>`, "g");
  const close = `</${tag}>`;
  for (let match = open.exec(xml); match !== null; match = open.exec(xml)) {
    if (match[1] === "/") {
      blocks.push("");
      continue;
    }
    const start = match.index + match[0].length;
    const end = xml.indexOf(close, start);
    if (end < 0) break;
    blocks.push(xml.slice(start, end));
    open.lastIndex = end + close.length;
  }
  return blocks;
}

/**
 * Returns the unescaped text of the first `<tag>` element, or undefined.
 *
 * @example Usage
 * ```ts
 * import { xmlText } from "./s3_xml.ts";
 * const xml = "<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>";
 * if (xmlText(xml, "Code") !== "NoSuchKey") throw new Error("not found");
 * ```
 *
 * @param xml The document or a block of it.
 * @param tag The element's name.
 * @returns Its text.
 */
export function xmlText(xml: string, tag: string): string | undefined {
  const block = xmlBlocks(xml, tag)[0];
  return block === undefined ? undefined : unescapeXml(block);
}

/**
 * The body of a CompleteMultipartUpload.
 *
 * @param parts The parts, in order, each with its ETag as S3 gave it.
 * @returns The XML.
 */
export function completeMultipartXml(parts: { partNumber: number; etag: string }[]): string {
  const items = parts.map((part) =>
    `<Part><PartNumber>${part.partNumber}</PartNumber><ETag>${escapeXml(part.etag)}</ETag></Part>`
  );
  return `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${
    items.join("")
  }</CompleteMultipartUpload>`;
}
