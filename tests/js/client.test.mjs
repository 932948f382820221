// The official @huggingface/hub client, unchanged, against a running hubnode.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import {
  modelInfo, listFiles, downloadFile, fileDownloadInfo, snapshotDownload, whoAmI, fileExists,
  pathsInfo, listModels,
} from "@huggingface/hub";

const hubUrl = process.env.HUBNODE_URL;
const modelDir = process.env.HUBNODE_MODEL_DIR;
const readToken = process.env.HUBNODE_READ_TOKEN;
const otherToken = process.env.HUBNODE_OTHER_TOKEN;
const repo = { type: "model", name: "test/public" };
const secret = { type: "model", name: "test/secret" };

function localFiles(dir, prefix = "") {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(p).isDirectory()) out.push(...localFiles(p, rel));
    else out.push(rel);
  }
  return out.sort();
}

test("modelInfo reads id, sha and siblings", async () => {
  const info = await modelInfo({ name: repo.name, hubUrl, additionalFields: ["sha", "siblings"] });
  assert.equal(info.id.length, 24); // the client fills id from _id
  assert.equal(info.name, "test/public");
  assert.match(info.sha, /^[0-9a-f]{40}$/);
  const names = info.siblings.map((s) => s.rfilename).sort();
  assert.deepEqual(names, localFiles(modelDir));
  assert.equal(info.private, false);
});

test("listFiles, recursive, at a raw refs/pr/1 revision", async () => {
  const files = [];
  for await (const f of listFiles({ repo, hubUrl, recursive: true, revision: "refs/pr/1" })) files.push(f);
  const paths = files.filter((f) => f.type === "file").map((f) => f.path).sort();
  assert.deepEqual(paths, localFiles(modelDir));
  assert.ok(files.some((f) => f.type === "directory" && f.path === "sub/dir"));
  const shard = files.find((f) => f.path.endsWith(".safetensors"));
  const bytes = readFileSync(join(modelDir, shard.path));
  assert.equal(shard.lfs.oid, createHash("sha256").update(bytes).digest("hex"));
  assert.equal(shard.size, bytes.length);
});

test("listFiles follows Link pagination", async () => {
  // The tree answers at most `limit` entries a page; the client must follow rel="next".
  const fetchSmallPages = (url, init) => {
    const u = new URL(url);
    if (u.pathname.includes("/tree/")) u.searchParams.set("limit", "2");
    return fetch(u.toString(), init);
  };
  const files = [];
  for await (const f of listFiles({ repo, hubUrl, recursive: true, fetch: fetchSmallPages })) files.push(f);
  assert.deepEqual(files.filter((f) => f.type === "file").map((f) => f.path).sort(), localFiles(modelDir));
});

test("downloadFile: whole file and a byte range", async () => {
  const blob = await downloadFile({ repo, path: "model-00001-of-00002.safetensors", hubUrl });
  const expected = readFileSync(join(modelDir, "model-00001-of-00002.safetensors"));
  const whole = Buffer.from(await blob.arrayBuffer());
  assert.ok(whole.equals(expected));
  const slice = Buffer.from(await blob.slice(1000, 5000).arrayBuffer());
  assert.ok(slice.equals(expected.subarray(1000, 5000)));
  const cfg = await downloadFile({ repo, path: "config.json", hubUrl, revision: "v1.0" });
  assert.equal(await cfg.text(), readFileSync(join(modelDir, "config.json"), "utf8"));
  assert.equal(await downloadFile({ repo, path: "nope.bin", hubUrl }), null);
});

test("fileDownloadInfo gives size and etag", async () => {
  const info = await fileDownloadInfo({ repo, path: "model-00002-of-00002.safetensors", hubUrl });
  const bytes = readFileSync(join(modelDir, "model-00002-of-00002.safetensors"));
  assert.equal(info.size, bytes.length);
  assert.equal(info.etag.replaceAll('"', ""), createHash("sha256").update(bytes).digest("hex"));
  const small = await fileDownloadInfo({ repo, path: "config.json", hubUrl });
  assert.match(small.etag.replaceAll('"', ""), /^[0-9a-f]{40}$/);
  assert.equal(await fileDownloadInfo({ repo, path: "missing.txt", hubUrl }), null);
});

test("fileExists and pathsInfo", async () => {
  assert.equal(await fileExists({ repo, path: "README.md", hubUrl }), true);
  assert.equal(await fileExists({ repo, path: "nope.md", hubUrl }), false);
  const info = await pathsInfo({ repo, paths: ["config.json", "sub", "missing"], hubUrl, expand: true });
  assert.equal(info.length, 2);
  const cfg = info.find((p) => p.path === "config.json");
  assert.match(cfg.lastCommit.id, /^[0-9a-f]{40}$/);
  assert.equal(cfg.lastCommit.title, "first");
});

test("snapshotDownload reproduces the repo byte for byte", async () => {
  const cacheDir = mkdtempSync(join(process.env.HUBNODE_WORK, "hfcache-"));
  const snapshot = await snapshotDownload({ repo, hubUrl, cacheDir });
  assert.deepEqual(localFiles(snapshot), localFiles(modelDir));
  for (const f of localFiles(modelDir)) {
    assert.ok(readFileSync(join(snapshot, f)).equals(readFileSync(join(modelDir, f))), f);
  }
});

test("whoAmI with a token", async () => {
  const me = await whoAmI({ accessToken: readToken, hubUrl });
  assert.equal(me.type, "user");
  assert.equal(me.name, "test");
  assert.equal(me.auth.accessToken.role, "read");
  await assert.rejects(whoAmI({ accessToken: "hf_notavalidtoken000000000000000000000", hubUrl }));
});

test("a private repo is invisible without a token, visible with one", async () => {
  await assert.rejects(modelInfo({ name: secret.name, hubUrl }), /not found/i);
  await assert.rejects(modelInfo({ name: secret.name, hubUrl, accessToken: otherToken }), /not found/i);
  const info = await modelInfo({ name: secret.name, hubUrl, accessToken: readToken });
  assert.equal(info.private, true);
  await assert.rejects(fileExists({ repo: secret, path: "config.json", hubUrl }), /401/);
  assert.equal(await fileExists({ repo: secret, path: "config.json", hubUrl, accessToken: readToken }), true);
  const cfg = await downloadFile({ repo: secret, path: "config.json", hubUrl, accessToken: readToken });
  assert.ok((await cfg.text()).includes("olmoe"));
  const anonymous = [];
  for await (const m of listModels({ hubUrl })) anonymous.push(m.name);
  assert.ok(anonymous.includes("test/public"));
  assert.ok(!anonymous.includes("test/secret"));
});
