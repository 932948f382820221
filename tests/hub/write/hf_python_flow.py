"""A new user's publishing flow with the real, unmodified huggingface_hub client against a node.

Run by python_clients.sh with HF_ENDPOINT, HF_TOKEN (a write token for the namespace `alice`),
HF_HUB_DISABLE_XET=1, a fresh HF_HOME and PYTHONPATH naming one released client. Nothing is
seeded: the repo is created by the client, its first upload has no model card (so the node's
default policy stages it for review), and the operator's approval goes through `hubnode approve`.
Prints one line per failed check and "N passed, M failed"; exits 1 when a check failed.

Usage: hf_python_flow.py HUBNODE ADMIN_TOKEN OTHER_TOKEN
"""

import io
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

import huggingface_hub
from huggingface_hub import HfApi, HfFileSystem, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

HUBNODE, ADMIN, OTHER = sys.argv[1], sys.argv[2], sys.argv[3]
ENDPOINT = os.environ["HF_ENDPOINT"]
VERSION = huggingface_hub.__version__
passed = failed = 0


def check(name, expected, actual):
    global passed, failed
    if expected == actual:
        passed += 1
    else:
        failed += 1
        print(f"FAIL [{VERSION}] {name}: expected {expected!r}, got {actual!r}")


def status_of(fn):
    """The HTTP status an API call fails with (200 when it does not fail)."""
    try:
        fn()
        return 200
    except HfHubHTTPError as e:
        return e.response.status_code if e.response is not None else -1


def missing(fn):
    """Whether an API call fails as the client's RepositoryNotFoundError (the node answers a private
    repo exactly as a missing one)."""
    try:
        fn()
        return False
    except RepositoryNotFoundError:
        return True


def safetensors(seed, n=16):
    rng = random.Random(seed)
    data = struct.pack(f"<{n}f", *[rng.uniform(-1, 1) for _ in range(n)])
    header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def files_of(api, repo, **kw):
    return sorted(s.rfilename for s in api.model_info(repo, files_metadata=False, **kw).siblings)


writer = HfApi()
anon = HfApi(token=False)
other = HfApi(token=OTHER)
repo = "alice/flow-" + VERSION.replace(".", "-")
work = tempfile.mkdtemp()

# 1. A new repo has a commit: repo_info works right after create_repo.
url = writer.create_repo(repo)
check("create_repo returns the repo url", f"{ENDPOINT}/{repo}", str(url))
info = writer.repo_info(repo)
check("repo_info after create: one commit with .gitattributes", [".gitattributes"], files_of(writer, repo))
check("repo_info sha is a commit id", 40, len(info.sha or ""))
check("the anonymous client sees the new repo too", [".gitattributes"], files_of(anon, repo))

# 2. An upload without a model card is staged: the writer reads it back, nobody else sees it.
model = safetensors(1)
commit = writer.upload_file(path_or_fileobj=io.BytesIO(model), path_in_repo="model.safetensors", repo_id=repo)
check("upload_file without a card succeeds", 40, len(commit.oid))
check("the writer sees the staged file", [".gitattributes", "model.safetensors"], files_of(writer, repo))
check("the writer's repo_info sha is the staged commit", commit.oid, writer.repo_info(repo).sha)
got = hf_hub_download(repo, "model.safetensors", cache_dir=os.path.join(work, "c1"))
check("the writer downloads the staged file", model, open(got, "rb").read())
check("anonymous does not see the staged file", [".gitattributes"], files_of(anon, repo))
check("another namespace's token does not see it", [".gitattributes"], files_of(other, repo))
check("anonymous download of the staged file is 404", 404,
      status_of(lambda: hf_hub_download(repo, "model.safetensors", cache_dir=os.path.join(work, "c2"), token=False)))
check("anonymous cannot name the staged commit", 404, status_of(lambda: anon.repo_info(repo, revision=commit.oid)))

# The operator releases it; then everyone downloads it.
out = subprocess.run([HUBNODE, "approve", "--node", ENDPOINT, "--token", ADMIN, repo + "@main"],
                     capture_output=True, text=True)
check("hubnode approve --node exits 0", (0, ""), (out.returncode, out.stderr.strip()))
got = hf_hub_download(repo, "model.safetensors", cache_dir=os.path.join(work, "c3"), token=False)
check("after approve anonymous downloads it", model, open(got, "rb").read())

# 3. upload_folder: a nested folder and a binary over 10 MB (LFS).
folder = os.path.join(work, "folder")
os.makedirs(os.path.join(folder, "sub", "deep"))
big = random.Random(2).randbytes(11 << 20)
open(os.path.join(folder, "sub", "deep", "big.bin"), "wb").write(big)
open(os.path.join(folder, "sub", "notes.txt"), "w").write("notes\n")
open(os.path.join(folder, "config.json"), "w").write('{"model_type": "test"}\n')
writer.upload_folder(folder_path=folder, repo_id=repo, commit_message="a folder")
want = [".gitattributes", "config.json", "model.safetensors", "sub/deep/big.bin", "sub/notes.txt"]
check("upload_folder: the writer sees every file", want, files_of(writer, repo))
got = hf_hub_download(repo, "sub/deep/big.bin", cache_dir=os.path.join(work, "c4"))
check("the 11 MB file reads back byte for byte", big, open(got, "rb").read())

# A README with a permissive license: a commit the policy allows releases the branch.
readme = "---\nlicense: apache-2.0\n---\n# flow\n"
writer.upload_file(path_or_fileobj=readme.encode(), path_in_repo="README.md", repo_id=repo)
check("an allowed commit releases what was staged", sorted(want + ["README.md"]), files_of(anon, repo))

# 4. parent_commit: the current head commits; a stale one is 412 and changes nothing.
from huggingface_hub import CommitOperationAdd, CommitOperationDelete

head = writer.repo_info(repo).sha
c = writer.create_commit(repo, [CommitOperationAdd("a.txt", b"a\n")], commit_message="with parent",
                         parent_commit=head)
check("create_commit with parent_commit", 40, len(c.oid))
check("a stale parent_commit is 412", 412, status_of(lambda: writer.create_commit(
    repo, [CommitOperationAdd("b.txt", b"b\n")], commit_message="stale", parent_commit=head)))
check("the refused commit changed nothing", c.oid, writer.repo_info(repo).sha)

# 5. A pull request, its discussion, a comment and the merge.
pr = writer.create_commit(repo, [CommitOperationAdd("pr.txt", b"from a pr\n")], commit_message="Add pr.txt",
                          create_pr=True)
check("create_commit(create_pr=True) gives a PR url", True, (pr.pr_url or "").endswith("/discussions/1"))
check("the PR is refs/pr/1", "refs/pr/1", pr.pr_revision)
discussions = list(writer.get_repo_discussions(repo))
check("get_repo_discussions lists the PR", [(1, True, "open")],
      [(d.num, d.is_pull_request, d.status) for d in discussions])
writer.comment_discussion(repo, 1, "looks good")
details = writer.get_discussion_details(repo, 1)
check("details: the comment is an event", True, any(getattr(e, "content", None) == "looks good" for e in details.events))
check("details: a diff of the PR", True, "pr.txt" in (details.diff or ""))
writer.merge_pull_request(repo, 1)
check("after the merge main has pr.txt", True, "pr.txt" in files_of(anon, repo))
check("the PR is merged", "merged", writer.get_discussion_details(repo, 1).status)
d2 = other.create_discussion(repo, title="A question", description="why?")
check("another namespace's token opens a discussion on a public repo", 2, d2.num)
check("it cannot close it", 403, status_of(lambda: other.change_discussion_status(repo, 2, "closed")))
try:
    other.change_discussion_status(repo, 2, "closed")
except HfHubHTTPError as e:
    check("the refusal says why (X-Error-Message)", True, "only the repo's writers" in str(e))
writer.change_discussion_status(repo, 2, "closed", comment="answered")
check("a writer closes it", "closed", writer.get_discussion_details(repo, 2).status)

comment = writer.comment_discussion(repo, 2, "a typo")
edited = writer.edit_discussion_comment(repo, 2, comment.id, "no typo")
check("edit_discussion_comment", ("no typo", True), (edited.content, edited.edited))
check("another namespace's token cannot edit it", 403,
      status_of(lambda: other.edit_discussion_comment(repo, 2, comment.id, "mine now")))
hidden = writer.hide_discussion_comment(repo, 2, comment.id)
check("hide_discussion_comment", (True, ""), (hidden.hidden, hidden.content))
renamed = other.rename_discussion(repo, 2, "A better question")
check("the author renames their discussion", "A better question", renamed.new_title)
check("filters: pull requests", [1], [d.num for d in writer.get_repo_discussions(repo, discussion_type="pull_request")])
check("filters: closed", [2], [d.num for d in anon.get_repo_discussions(repo, discussion_status="closed")])
check("filters: author", [2], [d.num for d in anon.get_repo_discussions(repo, author="bob")])

# A pull request whose file changed on its target meanwhile: the merge is refused with the list.
writer.upload_file(path_or_fileobj=b"v1\n", path_in_repo="conflict.txt", repo_id=repo)
pr3 = writer.create_commit(repo, [CommitOperationAdd("conflict.txt", b"from the pr\n"), CommitOperationAdd("x.txt", b"x\n")],
                           commit_message="Change conflict.txt", create_pr=True)
writer.upload_file(path_or_fileobj=b"v2\n", path_in_repo="conflict.txt", repo_id=repo)
check("a conflicting merge is 409", 409, status_of(lambda: writer.merge_pull_request(repo, pr3.pr_num)))
check("it names the file", ["conflict.txt"], writer.get_discussion_details(repo, pr3.pr_num).conflicting_files)
check("and changes nothing", False, "x.txt" in files_of(writer, repo))
# Without a conflict the merge is a merge commit with both parents.
pr4 = writer.create_commit(repo, [CommitOperationAdd("y.txt", b"y\n")], commit_message="Add y", create_pr=True)
writer.upload_file(path_or_fileobj=b"z\n", path_in_repo="z.txt", repo_id=repo)
writer.merge_pull_request(repo, pr4.pr_num, comment="merging")
check("a non-fast-forward merge keeps both sides", True, {"y.txt", "z.txt"} <= set(files_of(anon, repo)))
check("its merge commit is the branch head", writer.repo_info(repo).sha,
      writer.get_discussion_details(repo, pr4.pr_num).merge_commit_oid)
writer.change_discussion_status(repo, pr3.pr_num, "closed")
writer.delete_file("conflict.txt", repo)

# A contributor (a write token of another namespace) opens a pull request with files, pushes to
# it, and cannot touch main or anyone else's pull request; a writer merges it.
bob_pr = other.create_commit(repo, [CommitOperationAdd("bob.txt", b"from bob\n"),
                                    CommitOperationAdd("bob.bin", random.Random(3).randbytes(1 << 20))],
                             commit_message="Bob's proposal", create_pr=True)
check("a contributor opens a pull request with files", True, bob_pr.pr_url is not None)
other.create_commit(repo, [CommitOperationAdd("bob2.txt", b"more\n")], commit_message="more",
                    revision=bob_pr.pr_revision)
check("and pushes to it", True, "bob2.txt" in [s.rfilename for s in anon.model_info(repo, revision=bob_pr.pr_revision).siblings])
check("but not to main", 403, status_of(lambda: other.create_commit(repo, [CommitOperationAdd("x", b"x")],
                                                                      commit_message="no")))
check("nor to another pull request", 403, status_of(lambda: other.create_commit(
    repo, [CommitOperationAdd("x", b"x")], commit_message="no", revision=pr.pr_revision)))
empty_pr = other.create_pull_request(repo, title="An empty draft")
check("create_pull_request: a draft", ("draft", True), (empty_pr.status, empty_pr.is_pull_request))
writer.merge_pull_request(repo, bob_pr.pr_num)
check("the writer merges the contributor's pull request", True, {"bob.txt", "bob.bin", "bob2.txt"} <= set(files_of(anon, repo)))

# 6. Deletes, branches, tags, refs, commits.
writer.delete_file("a.txt", repo)
writer.delete_folder("sub/deep", repo)
check("delete_file and delete_folder", False,
      any(f in files_of(writer, repo) for f in ("a.txt", "sub/deep/big.bin")))
writer.create_branch(repo, branch="dev")
writer.create_tag(repo, tag="v1", tag_message="first")
refs = writer.list_repo_refs(repo, include_pull_requests=True)
check("list_repo_refs: branches", ["dev", "main"], sorted(b.name for b in refs.branches))
check("list_repo_refs: the tag", ["v1"], [t.name for t in refs.tags])
check("list_repo_refs: the PRs", ["refs/pr/1", "refs/pr/3", "refs/pr/4", "refs/pr/5", "refs/pr/6"],
      sorted(p.ref for p in refs.pull_requests))
commits = writer.list_repo_commits(repo)
check("list_repo_commits starts with the last commit and ends with the first",
      ("initial commit", True), (commits[-1].title, commits[0].commit_id == writer.repo_info(repo).sha))
sha = commits[0].commit_id
for rev in ("v1", sha, "refs/pr/1"):
    got = hf_hub_download(repo, "pr.txt", revision=rev, cache_dir=os.path.join(work, "c5"), token=False)
    check(f"hf_hub_download at {rev[:12]}", b"from a pr\n", open(got, "rb").read())
snap = snapshot_download(repo, cache_dir=os.path.join(work, "c6"), token=False)
check("snapshot_download", sorted(["README.md", "config.json", "model.safetensors", "pr.txt", "sub/notes.txt",
                                   ".gitattributes", "y.txt", "z.txt", "bob.txt", "bob.bin", "bob2.txt"]),
      sorted(os.path.relpath(os.path.join(d, f), snap) for d, _, fs in os.walk(snap) for f in fs))
fs = HfFileSystem(token=False)
check("HfFileSystem.ls", True, f"{repo}/README.md" in fs.ls(repo, detail=False))
with fs.open(f"{repo}/sub/notes.txt", "rb") as f:
    check("HfFileSystem.open", b"notes\n", f.read())

# 7. Settings, move, delete.
writer.update_repo_settings(repo, private=True)
check("a private repo is gone for anonymous", True, missing(lambda: anon.repo_info(repo)))
check("and for another namespace's token", True, missing(lambda: other.repo_info(repo)))
check("and still there for its writer", True, writer.repo_info(repo).private)
moved = repo + "-moved"
writer.move_repo(repo, moved)
check("move_repo", True, missing(lambda: writer.repo_info(repo)))
check("the moved repo", True, writer.repo_info(moved).private)
writer.delete_repo(moved)
check("delete_repo", True, missing(lambda: writer.repo_info(moved)))

print(f"[{VERSION}] {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
