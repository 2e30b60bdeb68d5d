import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { completeMultipartXml, escapeXml, unescapeXml, xmlBlocks, xmlText } from "./s3_xml.ts";

const LISTING = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>p/a &amp; b&lt;1&gt;</Key><LastModified>2026-12-05T09:00:00.123Z</LastModified>
<ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>p/&#xFC;&#252;</Key><ETag>"e"</ETag><Size>22</Size></Contents>
<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes><Owner/></ListBucketResult>`;

Deno.test("xmlBlocks and xmlText read a ListObjectsV2 answer: repeated blocks, entities, nested names", () => {
  const contents = xmlBlocks(LISTING, "Contents");
  strictEqual(contents.length, 2);
  strictEqual(xmlText(contents[0], "Key"), "p/a & b<1>");
  strictEqual(xmlText(contents[0], "ETag"), '"0cc175b9c0f1b6a831c399e269772661"');
  strictEqual(xmlText(contents[1], "Key"), "p/üü");
  strictEqual(xmlText(contents[1], "Size"), "22");
  deepStrictEqual(xmlBlocks(LISTING, "CommonPrefixes").map((block) => xmlText(block, "Prefix")), ["p/d/"]);
  strictEqual(xmlText(LISTING, "Prefix"), "p/", "the first Prefix is the listing's own");
  strictEqual(xmlText(LISTING, "IsTruncated"), "true");
  deepStrictEqual(xmlBlocks(LISTING, "Owner"), [""], "a self-closing element is an empty block");
  strictEqual(xmlText(LISTING, "NextContinuationToken"), undefined);
});

Deno.test("unescapeXml leaves unknown entities and plain text alone; escapeXml undoes it", () => {
  strictEqual(unescapeXml("plain"), "plain");
  strictEqual(unescapeXml("&nope; &amp;amp;"), "&nope; &amp;");
  const text = `a&b<c>"d"'e'`;
  strictEqual(unescapeXml(escapeXml(text)), text);
});

Deno.test("completeMultipartXml lists the parts in order with their escaped ETags", () => {
  const xml = completeMultipartXml([{ partNumber: 1, etag: '"a"' }, { partNumber: 2, etag: '"b"' }]);
  deepStrictEqual(
    xmlBlocks(xml, "Part").map((part) => [xmlText(part, "PartNumber"), xmlText(part, "ETag")]),
    [["1", '"a"'], ["2", '"b"']],
  );
  strictEqual(xml.includes("<ETag>&quot;a&quot;</ETag>"), true);
});
