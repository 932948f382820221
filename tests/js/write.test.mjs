// The official @huggingface/hub client, unchanged, writing to a running hubnode: repo create and
// delete, commits of regular and LFS files, deletes, parentCommit, pull requests, branches,
// private repos, and the node's license policy, which assesses every commit before it is visible.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  createRepo, deleteRepo, uploadFile, uploadFiles, commit, deleteFile, createBranch, deleteBranch,
  modelInfo, listFiles, listModels, downloadFile, fileDownloadInfo, whoAmI, repoExists,
} from "@huggingface/hub";

const hubUrl = process.env.HUBNODE_URL;
const accessToken = process.env.HUBNODE_WRITE_TOKEN;
const intruder = process.env.HUBNODE_WRITE_OTHER;
const readToken = process.env.HUBNODE_READ_TOKEN;
const ftDir = process.env.HUBNODE_FT_DIR;
// Set when the node offers multipart LFS uploads from 4 MiB up, in parts of this size.
const multipartChunk = Number(process.env.HUBNODE_MULTIPART_CHUNK || 0);
const model = (name) => ({ type: "model", name: `writer/${name}` });

const APACHE = "---\nlicense: apache-2.0\n---\n# A test repo\n";
const NONCOMMERCIAL = "---\nlicense: cc-by-nc-4.0\n---\n# A non-commercial test repo\n";

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const gitBlobId = (bytes) =>
  createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
const blob = (s) => new Blob([s]);

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

async function tree(repo, revision, token = accessToken) {
  const files = [];
  for await (const f of listFiles({ repo, hubUrl, recursive: true, revision, accessToken: token ?? undefined })) {
    if (f.type === "file") files.push(f);
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

// What the writer sees of main: its commit and files.
async function mainState(repo) {
  const files = await tree(repo);
  return { sha: await headSha(repo), files };
}

async function headSha(repo, token = accessToken) {
  const info = await modelInfo({ name: repo.name, hubUrl, accessToken: token ?? undefined, additionalFields: ["sha"] });
  return info.sha;
}

async function download(repo, path, revision) {
  const b = await downloadFile({ repo, path, hubUrl, accessToken, revision });
  assert.ok(b, `${path} at ${revision ?? "main"} should exist`);
  return Buffer.from(await b.arrayBuffer());
}

// A fetch that remembers the last answer's status and X-Error-Code (HubApiError keeps neither
// the headers nor the code); the client is otherwise unchanged.
function recordingFetch() {
  const seen = [];
  const f = async (url, init) => {
    const res = await fetch(url, init);
    seen.push({
      url: String(url), status: res.status, code: res.headers.get("X-Error-Code"),
      message: res.headers.get("X-Error-Message"), held: res.headers.get("X-Hubnode-Held"),
    });
    return res;
  };
  f.last = () => seen.at(-1);
  f.seen = seen;
  return f;
}

// A deterministic text file over 10 MB: LFS by size alone, though its name is not an LFS pattern.
function bigText() {
  const lines = [];
  let x = 7;
  for (let i = 0; i < 160_000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    lines.push(`${i.toString().padStart(7, "0")} ${x.toString(36).padStart(8, "0")} ${"hubnode".repeat(8)}`);
  }
  return Buffer.from(lines.join("\n") + "\n");
}

test("whoAmI with a write token", async () => {
  const me = await whoAmI({ accessToken, hubUrl });
  assert.equal(me.name, "writer");
  assert.equal(me.auth.accessToken.role, "write");
});

test("a new user's first steps: createRepo, uploadFiles without any card, listFiles, deleteFile, deleteRepo", async () => {
  const repo = model("first-steps");
  const res = await createRepo({ repo, accessToken, hubUrl });
  assert.ok(res.repoUrl.endsWith("/writer/first-steps"), res.repoUrl);
  // As on the Hub, a new repo has a first commit (the default .gitattributes).
  assert.equal(await repoExists({ repo, hubUrl, accessToken }), true);
  assert.deepEqual((await tree(repo)).map((f) => f.path), [".gitattributes"]);
  const weights = Buffer.from(readFileSync(join(ftDir, "model-00001-of-00002.safetensors")));
  const up = await uploadFiles({
    repo, accessToken, hubUrl,
    files: [{ path: "model.safetensors", content: blob(weights) }, { path: "config.json", content: blob("{}\n") }],
  });
  assert.match(up.commit.oid, /^[0-9a-f]{40}$/);
  // No card, so no license: the commit is staged. Its writer reads it back...
  assert.deepEqual((await tree(repo)).map((f) => f.path), [".gitattributes", "config.json", "model.safetensors"]);
  assert.equal(await headSha(repo), up.commit.oid);
  assert.ok((await download(repo, "model.safetensors")).equals(weights));
  // ...nobody else sees it yet.
  assert.deepEqual((await tree(repo, undefined, null)).map((f) => f.path), [".gitattributes"]);
  assert.deepEqual((await tree(repo, undefined, intruder)).map((f) => f.path), [".gitattributes"]);
  await deleteFile({ repo, accessToken, hubUrl, path: "config.json" });
  assert.deepEqual((await tree(repo)).map((f) => f.path), [".gitattributes", "model.safetensors"]);
  await deleteRepo({ repo, accessToken, hubUrl });
  assert.equal(await repoExists({ repo, hubUrl, accessToken }), false);
});

test("policy: a denied commit is refused (451), one needing review is staged for the writers", async () => {
  const repo = model("policy");
  await createRepo({ repo, accessToken, hubUrl });
  const initial = await mainState(repo);
  assert.deepEqual(initial.files.map((f) => f.path), [".gitattributes"]);
  const anonymous = async () => (await tree(repo, undefined, null)).map((f) => f.path);

  // No README at all: no license, so the commit is staged. The answer says so.
  const f1 = recordingFetch();
  const held = await uploadFile({ repo, accessToken, hubUrl, fetch: f1, file: { path: "config.json", content: blob('{"a": 1}\n') } });
  assert.equal(f1.last().status, 200);
  assert.match(f1.last().held, /held for review/);
  assert.equal(await headSha(repo), held.commit.oid);
  assert.deepEqual(await anonymous(), [".gitattributes"]);

  // A non-commercial license is denied under the default policy: 451, nothing changes.
  const f2 = recordingFetch();
  await assert.rejects(
    uploadFiles({
      repo, accessToken, hubUrl, fetch: f2,
      files: [{ path: "README.md", content: blob(NONCOMMERCIAL) }, { path: "config.json", content: blob("{}\n") }],
    }),
    (e) => e.statusCode === 451,
  );
  assert.equal(f2.last().code, "PolicyRefused");
  assert.equal(await headSha(repo), held.commit.oid);

  // apache-2.0 passes, and releases what was staged with it.
  const ok = await uploadFiles({
    repo, accessToken, hubUrl,
    files: [{ path: "README.md", content: blob(APACHE) }, { path: "config.json", content: blob("{}\n") }],
  });
  const sha = await headSha(repo);
  assert.equal(sha, ok.commit.oid);
  const before = await tree(repo);
  assert.deepEqual(before.map((f) => f.path), [".gitattributes", "README.md", "config.json"]);
  assert.deepEqual(await anonymous(), [".gitattributes", "README.md", "config.json"]);

  // Relicensing to non-commercial is refused; main, its files and the README stay as they were.
  const f3 = recordingFetch();
  await assert.rejects(
    uploadFile({ repo, accessToken, hubUrl, fetch: f3, file: { path: "README.md", content: blob(NONCOMMERCIAL) } }),
    (e) => e.statusCode === 451,
  );
  assert.equal(f3.last().code, "PolicyRefused");
  assert.equal(await headSha(repo), sha);
  assert.deepEqual(await tree(repo), before);
  assert.equal((await download(repo, "README.md")).toString(), APACHE);

  // Removing the README (and with it the license) is staged: readers keep the licensed revision.
  const removed = await deleteFile({ repo, accessToken, hubUrl, path: "README.md" });
  assert.equal(await headSha(repo), removed.commit.oid);
  assert.deepEqual(await anonymous(), [".gitattributes", "README.md", "config.json"]);
  // Putting it back is allowed, and releases the branch again.
  const back = await uploadFile({ repo, accessToken, hubUrl, file: { path: "README.md", content: blob(APACHE) } });
  assert.equal(await headSha(repo, null), back.commit.oid);
});

test("upload a model folder (regular and LFS files) and read it back byte for byte", async () => {
  const repo = model("ft");
  await createRepo({ repo, accessToken, hubUrl });
  // The Hub's default LFS patterns, from the repo's first commit.
  const defaults = await download(repo, ".gitattributes");
  assert.match(defaults.toString(), /^\*\.safetensors filter=lfs diff=lfs merge=lfs -text$/m);
  const big = bigText();
  assert.ok(big.length > 10 * 1024 * 1024);
  const binary = Buffer.from([0, 1, 2, 3, 0, 255, 254, 0, 10, 13]);
  // The whole folder from a file: URL (streamed FileBlobs), plus two extra files.
  const f = recordingFetch();
  const res = await commit({
    repo, accessToken, hubUrl, title: "Upload the fine-tune", fetch: f,
    operations: [
      { operation: "addOrUpdate", path: "", content: pathToFileURL(ftDir) },
      { operation: "addOrUpdate", path: "data/big.txt", content: blob(big) },
      { operation: "addOrUpdate", path: "data/tiny.dat", content: blob(binary) },
    ],
  });
  assert.match(res.commit.oid, /^[0-9a-f]{40}$/);
  assert.ok(res.commit.url.endsWith(`/writer/ft/commit/${res.commit.oid}`), res.commit.url);
  assert.equal(res.pullRequestUrl, undefined);
  // LFS bytes went to the node's signed upload URLs: basic PUTs for the small objects, and the
  // multipart transfer (part PUTs, then completion) for the 11 MB file when the node offers it.
  const bigOid = sha256(big);
  const puts = f.seen.filter((r) => r.url.includes("/api/lfs/objects/"));
  assert.ok(puts.every((r) => r.status === 200), JSON.stringify(puts));
  const partPuts = puts.filter((r) => r.url.includes(`/api/lfs/objects/${bigOid}?`) && /[?&]part=\d+/.test(r.url));
  const completes = f.seen.filter((r) => r.url.includes(`/api/lfs/complete/${bigOid}?`));
  if (multipartChunk) {
    assert.equal(partPuts.length, Math.ceil(big.length / multipartChunk));
    assert.equal(completes.length, 1);
    assert.equal(completes[0].status, 200);
  } else {
    assert.equal(partPuts.length, 0);
  }
  for (const p of ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]) {
    const oid = sha256(readFileSync(join(ftDir, p)));
    assert.equal(puts.filter((r) => r.url.includes(`/api/lfs/objects/${oid}?`)).length, 1, p);
  }

  const expected = new Map(localFiles(ftDir).map((p) => [p, readFileSync(join(ftDir, p))]));
  expected.set("data/big.txt", big);
  expected.set("data/tiny.dat", binary);
  // As on the Hub, LFS files outside the default patterns are tracked in .gitattributes.
  expected.set(".gitattributes", Buffer.concat([defaults, Buffer.from(
    "data/big.txt filter=lfs diff=lfs merge=lfs -text\ndata/tiny.dat filter=lfs diff=lfs merge=lfs -text\n")]));
  const files = await tree(repo);
  assert.deepEqual(files.map((f) => f.path), [...expected.keys()].sort());
  for (const f of files) {
    const bytes = expected.get(f.path);
    assert.equal(f.size, bytes.length, f.path);
    const lfs = f.path.endsWith(".safetensors") || f.path === "data/big.txt" || f.path === "data/tiny.dat";
    if (lfs) {
      assert.ok(f.lfs, `${f.path} should be stored as LFS`);
      assert.equal(f.lfs.oid, sha256(bytes), f.path);
      assert.equal(f.lfs.size, bytes.length, f.path);
    } else {
      assert.equal(f.lfs, undefined, `${f.path} should be a regular file`);
      assert.equal(f.oid, gitBlobId(bytes), f.path);
    }
    const back = await download(repo, f.path);
    assert.equal(back.length, bytes.length, f.path);
    assert.equal(sha256(back), sha256(bytes), f.path);
    assert.ok(back.equals(bytes), f.path);
  }
  const info = await fileDownloadInfo({ repo, path: "model-00001-of-00002.safetensors", hubUrl, accessToken });
  assert.equal(info.etag.replaceAll('"', ""), sha256(expected.get("model-00001-of-00002.safetensors")));
  const mi = await modelInfo({ name: repo.name, hubUrl, accessToken, additionalFields: ["sha", "siblings"] });
  assert.equal(mi.sha, res.commit.oid);
  assert.equal(mi.private, false);

  // Uploading the same files again changes nothing and needs no LFS upload.
  const again = await uploadFiles({
    repo, accessToken, hubUrl,
    files: [{ path: "model-00002-of-00002.safetensors", content: blob(expected.get("model-00002-of-00002.safetensors")) }],
  });
  assert.equal(again.commit.oid, res.commit.oid);
  assert.equal(await headSha(repo), res.commit.oid);
});

test("deleteFile removes a file in a new commit", async () => {
  const repo = model("ft");
  const before = await headSha(repo);
  const res = await deleteFile({ repo, accessToken, hubUrl, path: "data/tiny.dat" });
  assert.notEqual(res.commit.oid, before);
  assert.equal(await headSha(repo), res.commit.oid);
  assert.equal(await downloadFile({ repo, path: "data/tiny.dat", hubUrl, accessToken }), null);
  assert.ok(!(await tree(repo)).some((f) => f.path === "data/tiny.dat"));
  // Still there at the previous commit.
  assert.equal((await download(repo, "data/tiny.dat", before)).length, 10);
  // Deleting a file that is not there fails and moves nothing.
  await assert.rejects(deleteFile({ repo, accessToken, hubUrl, path: "data/tiny.dat" }));
  assert.equal(await headSha(repo), res.commit.oid);
});

test("parentCommit: a current parent commits, a stale one is refused with 412", async () => {
  const repo = model("ft");
  const parent = await headSha(repo);
  const first = await uploadFile({
    repo, accessToken, hubUrl, parentCommit: parent, file: { path: "cas/one.txt", content: blob("one\n") },
  });
  assert.equal(await headSha(repo), first.commit.oid);
  const f = recordingFetch();
  await assert.rejects(
    uploadFile({
      repo, accessToken, hubUrl, parentCommit: parent, fetch: f, file: { path: "cas/two.txt", content: blob("two\n") },
    }),
    (e) => e.statusCode === 412,
  );
  assert.equal(f.last().status, 412);
  assert.equal(await headSha(repo), first.commit.oid);
  assert.equal(await downloadFile({ repo, path: "cas/two.txt", hubUrl, accessToken }), null);
  // An LFS file with a stale parent: the object may be uploaded, the commit is still refused.
  await assert.rejects(
    uploadFile({
      repo, accessToken, hubUrl, parentCommit: parent,
      file: { path: "cas/stale.bin", content: blob(Buffer.alloc(4096, 7)) },
    }),
    (e) => e.statusCode === 412,
  );
  assert.equal(await headSha(repo), first.commit.oid);
});

test("a pull request commit lands on refs/pr/N, not on main", async () => {
  const repo = model("ft");
  const main = await headSha(repo);
  const mainFiles = await tree(repo);
  const weights = Buffer.alloc(200_000);
  for (let i = 0; i < weights.length; i++) weights[i] = (i * 31 + 7) & 0xff;
  const res = await uploadFiles({
    repo, accessToken, hubUrl, isPullRequest: true, commitTitle: "Proposal",
    files: [{ path: "pr/extra.txt", content: blob("from a PR\n") }, { path: "pr/weights.bin", content: blob(weights) }],
  });
  assert.ok(res.pullRequestUrl, "pullRequestUrl should be set");
  const m = /\/discussions\/(\d+)$/.exec(res.pullRequestUrl);
  assert.ok(m, res.pullRequestUrl);
  assert.ok(res.pullRequestUrl.includes("/writer/ft/"), res.pullRequestUrl);
  const ref = `refs/pr/${m[1]}`;
  assert.equal(await headSha(repo), main);
  assert.deepEqual(await tree(repo), mainFiles);
  const prFiles = await tree(repo, ref);
  assert.deepEqual(
    prFiles.map((f) => f.path),
    [...mainFiles.map((f) => f.path), "pr/extra.txt", "pr/weights.bin"].sort(),
  );
  assert.equal((await download(repo, "pr/extra.txt", ref)).toString(), "from a PR\n");
  assert.ok((await download(repo, "pr/weights.bin", ref)).equals(weights));
  assert.equal(prFiles.find((f) => f.path === "pr/weights.bin").lfs.oid, sha256(weights));
  assert.equal(await downloadFile({ repo, path: "pr/extra.txt", hubUrl, accessToken }), null);

  // A second PR gets the next number.
  const res2 = await uploadFile({
    repo, accessToken, hubUrl, isPullRequest: true, file: { path: "pr/second.txt", content: blob("2\n") },
  });
  const m2 = /\/discussions\/(\d+)$/.exec(res2.pullRequestUrl);
  assert.equal(Number(m2[1]), Number(m[1]) + 1);
  assert.equal((await download(repo, "pr/second.txt", `refs/pr/${m2[1]}`)).toString(), "2\n");
  assert.equal(await downloadFile({ repo, path: "pr/second.txt", hubUrl, accessToken, revision: ref }), null);
});

test("createBranch, commit to it, deleteBranch", async () => {
  const repo = model("ft");
  const main = await headSha(repo);
  await createBranch({ repo, accessToken, hubUrl, branch: "dev" });
  assert.equal((await modelInfo({ name: repo.name, hubUrl, accessToken, revision: "dev", additionalFields: ["sha"] })).sha, main);
  const res = await uploadFile({ repo, accessToken, hubUrl, branch: "dev", file: { path: "dev.txt", content: blob("dev\n") } });
  assert.equal((await download(repo, "dev.txt", "dev")).toString(), "dev\n");
  assert.equal(await downloadFile({ repo, path: "dev.txt", hubUrl, accessToken }), null);
  assert.equal(await headSha(repo), main);
  // Existing name: refused.
  await assert.rejects(createBranch({ repo, accessToken, hubUrl, branch: "dev" }));
  // From a given revision.
  await createBranch({ repo, accessToken, hubUrl, branch: "from-dev", revision: "dev" });
  assert.equal((await modelInfo({ name: repo.name, hubUrl, accessToken, revision: "from-dev", additionalFields: ["sha"] })).sha, res.commit.oid);
  // An empty branch has no files.
  await createBranch({ repo, accessToken, hubUrl, branch: "empty", empty: true });
  assert.deepEqual(await tree(repo, "empty"), []);

  for (const branch of ["dev", "from-dev", "empty"]) await deleteBranch({ repo, accessToken, hubUrl, branch });
  await assert.rejects(tree(repo, "dev"));
  await assert.rejects(deleteBranch({ repo, accessToken, hubUrl, branch: "dev" }));
  await assert.rejects(deleteBranch({ repo, accessToken, hubUrl, branch: "main" }));
  await assert.rejects(deleteBranch({ repo, accessToken: intruder, hubUrl, branch: "main" }));
  assert.equal(await headSha(repo), main);
});

test("other tokens may not write", async () => {
  const repo = model("ft");
  const main = await headSha(repo);
  const file = { path: "nope.txt", content: blob("nope\n") };
  await assert.rejects(uploadFile({ repo, accessToken: intruder, hubUrl, file }), (e) => e.statusCode === 403);
  await assert.rejects(uploadFile({ repo, accessToken: readToken, hubUrl, file }), (e) => e.statusCode === 403);
  await assert.rejects(uploadFile({ repo, hubUrl, file }), (e) => e.statusCode === 401);
  await assert.rejects(createRepo({ repo: model("intruded"), accessToken: intruder, hubUrl }), (e) => e.statusCode === 403);
  await assert.rejects(deleteRepo({ repo, accessToken: intruder, hubUrl }), (e) => e.statusCode === 403);
  assert.equal(await headSha(repo), main);
  // createRepo on a taken name.
  await assert.rejects(createRepo({ repo, accessToken, hubUrl }), (e) => e.statusCode === 409);
});

test("a private repo stays invisible and unwritable to other tokens", async () => {
  const repo = model("private");
  await createRepo({ repo, accessToken, hubUrl, private: true });
  const res = await uploadFiles({
    repo, accessToken, hubUrl,
    files: [{ path: "README.md", content: blob(APACHE) }, { path: "secret.txt", content: blob("s3cret\n") }],
  });
  const info = await modelInfo({ name: repo.name, hubUrl, accessToken, additionalFields: ["sha"] });
  assert.equal(info.private, true);
  assert.equal(info.sha, res.commit.oid);
  assert.equal((await download(repo, "secret.txt")).toString(), "s3cret\n");

  await assert.rejects(modelInfo({ name: repo.name, hubUrl }), /not found/i);
  await assert.rejects(modelInfo({ name: repo.name, hubUrl, accessToken: intruder }), /not found/i);
  // A proper "not found" API error (not an unparsable body).
  await assert.rejects(
    downloadFile({ repo, path: "secret.txt", hubUrl, accessToken: intruder }),
    (e) => [401, 404].includes(e.statusCode) && /not found/i.test(e.message),
  );
  for (const token of [undefined, intruder]) {
    const names = [];
    for await (const m of listModels({ hubUrl, accessToken: token })) names.push(m.name);
    assert.ok(names.includes("writer/ft"), `writer/ft listed for ${token ? "intruder" : "anonymous"}`);
    assert.ok(!names.includes("writer/private"), `writer/private listed for ${token ? "intruder" : "anonymous"}`);
  }
  const mine = [];
  for await (const m of listModels({ hubUrl, accessToken })) mine.push(m.name);
  assert.ok(mine.includes("writer/private"));

  // The intruder can neither write to it nor learn that it exists.
  const f = recordingFetch();
  await assert.rejects(
    uploadFiles({ repo, accessToken: intruder, hubUrl, fetch: f, files: [{ path: "x.txt", content: blob("x\n") }] }),
  );
  assert.ok([401, 404].includes(f.last().status), `status ${f.last().status}`);
  assert.equal(f.last().code, "RepoNotFound");
  await assert.rejects(
    uploadFiles({ repo, accessToken: intruder, hubUrl, files: [{ path: "w.bin", content: blob(Buffer.alloc(1000, 1)) }] }),
  );
  await assert.rejects(deleteRepo({ repo, accessToken: intruder, hubUrl }));
  await assert.rejects(createBranch({ repo, accessToken: intruder, hubUrl, branch: "x" }));
  assert.equal(await headSha(repo), res.commit.oid);
  assert.deepEqual((await tree(repo)).map((x) => x.path), [".gitattributes", "README.md", "secret.txt"]);
});

test("deleteRepo removes the repo; the name can be created again", async () => {
  const repo = model("doomed");
  await createRepo({ repo, accessToken, hubUrl });
  await uploadFile({ repo, accessToken, hubUrl, file: { path: "README.md", content: blob(APACHE) } });
  await deleteRepo({ repo, accessToken, hubUrl });
  await assert.rejects(modelInfo({ name: repo.name, hubUrl, accessToken }), /not found/i);
  await assert.rejects(deleteRepo({ repo, accessToken, hubUrl }));
  await createRepo({ repo, accessToken, hubUrl });
  const fresh = await mainState(repo);
  assert.deepEqual(fresh.files.map((f) => f.path), [".gitattributes"]);
  await deleteRepo({ repo, accessToken, hubUrl });
});
