/**
 * The `Storage` conformance suite (tests/storage_conformance.ts) run on
 * `LocalStorage`, each case in a root of its own under a temporary folder.
 * LocalStorage's own checks (links, `.dfos-partial`, what lies on the disk)
 * are in server/local_storage*_test.ts.
 *
 * @module
 */

import { join } from "node:path";
import { BLOCK_BYTES, LocalStorage } from "../server/local_storage.ts";
import { MAX_NAME_BYTES } from "../shared/names.ts";
import { type ConformanceStore, storageConformance } from "./storage_conformance.ts";

/** A fresh root; `reopen` opens another `LocalStorage` on it, as a restarted server does. */
async function openLocal(): Promise<ConformanceStore> {
  const base = await Deno.makeTempDir({ prefix: "dfos-conformance-" });
  const root = join(base, "root");
  let storage = await LocalStorage.open(root);
  return {
    get storage() {
      return storage;
    },
    async reopen({ clean }) {
      // Unclean: the instance is let go with its counters unwritten, as a killed process's.
      if (clean) await storage.abortUploads();
      storage = await LocalStorage.open(root);
    },
    async [Symbol.asyncDispose]() {
      try {
        await storage.abortUploads();
      } finally {
        await Deno.remove(base, { recursive: true });
      }
    },
  };
}

storageConformance({
  name: "LocalStorage",
  blockSize: BLOCK_BYTES,
  maxNameBytes: MAX_NAME_BYTES,
  capabilities: {
    folders: true,
    readersKeepReplacedVersion: true,
    chunkListMovesWithFile: true,
    chunkListRemovedWithFile: true,
    uncleanStopNewEpoch: true,
    changedNamesAnswered: true,
  },
  open: openLocal,
});
