// keygen, sign and verify: OpenSSF model signatures (key mode) of a directory or a stored revision.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "base/file.h"
#include "hub/cli/commands.h"
#include "hub/trust/trust_gate.h"
#include "verify/verify.h"

namespace hubnode::hub {
namespace {

namespace fs = std::filesystem;

struct Target {
  bool is_dir = false;   // a directory, or a single-file model (is_file)
  bool is_file = false;
  std::string dir;
  RepoSpec spec;
  // Where the bundle is by default: DIR/model.sig, or FILE.sig for a single-file model.
  std::string DefaultSignature() const { return is_file ? dir + ".sig" : (fs::path(dir) / "model.sig").string(); }
};

Result<Target> ParseTarget(const std::string& s) {
  Target t;
  std::error_code ec;
  if (fs::is_directory(s, ec) || fs::is_regular_file(s, ec)) {
    t.is_dir = true;
    t.is_file = !fs::is_directory(s, ec);
    t.dir = s;
    return t;
  }
  auto spec = ParseRepoSpec(s);
  if (!spec.ok()) return InvalidArgumentError("'" + s + "' is neither a directory, a file nor REPO[@REV]");
  t.spec = *spec;
  return t;
}

}  // namespace

void AddSignCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out) {
  {
    auto* sub = app.add_subcommand("keygen", "Generate an ECDSA signing key (KEY and KEY.pub)");
    auto path = std::make_shared<std::string>();
    auto curve = std::make_shared<std::string>("p256");
    sub->add_option("--out", *path, "Private key file to write (the public key goes to FILE.pub)")->required();
    sub->add_option("--curve", *curve, "p256 (default), p384 or p521");
    out->push_back({sub, [path, curve]() -> int {
      auto c = verify::ParseCurve(*curve);
      if (!c.ok()) return Fail(c.status());
      std::error_code ec;
      if (fs::exists(*path, ec) || fs::exists(*path + ".pub", ec)) {
        return Fail(AlreadyExistsError(*path + " or " + *path + ".pub exists; not overwriting a key"));
      }
      auto key = verify::PrivateKey::Generate(*c);
      if (!key.ok()) return Fail(key.status());
      if (Status s = WriteFileAtomic(*path, key->Pem()); !s.ok()) return Fail(s);
      ::chmod(path->c_str(), 0600);
      if (Status s = WriteFileAtomic(*path + ".pub", key->public_key().pem()); !s.ok()) return Fail(s);
      std::printf("wrote %s (private, %s) and %s.pub; key hint %s\n", path->c_str(),
                  std::string(verify::CurveName(*c)).c_str(), path->c_str(), key->public_key().Hint().c_str());
      return 0;
    }});
  }
  {
    auto* sub = app.add_subcommand("sign", "Sign DIR, FILE or REPO@REV with an OpenSSF model-signing bundle");
    struct Args {
      std::string target, key, out, method = "files", cert;
      uint64_t shard_size = 1'000'000'000;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("target", a->target, "Model directory, a single-file model, or REPO[@REV] in the store")->required();
    sub->add_option("--key", a->key, "PEM private key (from hubnode keygen or openssl)")->required();
    sub->add_option("--out", a->out, "Bundle to write (default DIR/model.sig or FILE.sig; required for REPO@REV)");
    sub->add_option("--method", a->method, "files (default) or shards")->check(CLI::IsMember({"files", "shards"}));
    sub->add_option("--shard-size", a->shard_size, "Shard size in bytes for --method shards (default 1e9)");
    sub->add_option("--cert", a->cert, "Certificate mode: PEM leaf certificate for --key, then its chain");
    out->push_back({sub, [a, &flags]() -> int {
      auto t = ParseTarget(a->target);
      if (!t.ok()) return Fail(t.status());
      auto pem = ReadFileToString(a->key, 1 << 20);
      if (!pem.ok()) return Fail(pem.status());
      auto key = verify::PrivateKey::FromPem(*pem);
      if (!key.ok()) return Fail(key.status().WithContext(a->key));
      verify::Serialization ser;
      ser.method = a->method;
      ser.shard_size = a->shard_size;
      ser.ignore_paths = verify::DefaultIgnorePaths();
      Result<verify::Manifest> m = InternalError("unset");
      std::string out_path = a->out;
      if (t->is_dir) {
        if (out_path.empty()) out_path = t->DefaultSignature();
        m = verify::HashDirectory(t->dir, ser);
      } else {
        if (out_path.empty()) return Fail(InvalidArgumentError("--out is required when signing REPO@REV"));
        auto st = OpenStore(flags);
        if (!st.ok()) return Fail(st.status());
        auto commit = (*st)->Resolve(t->spec.repo, t->spec.rev);
        if (!commit.ok()) return Fail(commit.status());
        m = ManifestOfCommit(**st, t->spec.repo, *commit, ser);
      }
      if (!m.ok()) return Fail(m.status());
      Result<std::string> bundle = InternalError("unset");
      if (a->cert.empty()) {
        bundle = verify::SignBundle(*m, *key);
      } else {
        auto chain = ReadFileToString(a->cert, 1 << 20);
        if (!chain.ok()) return Fail(chain.status());
        bundle = verify::SignBundleWithCertificate(*m, *key, *chain);
      }
      if (!bundle.ok()) return Fail(bundle.status());
      if (Status s = WriteFileAtomic(out_path, *bundle); !s.ok()) return Fail(s);
      std::printf("signed %zu resources (%s, root %s) with key %s -> %s\n", m->resources.size(), ser.method.c_str(),
                  verify::RootDigest(*m).hex().c_str(), key->public_key().Hint().c_str(), out_path.c_str());
      return 0;
    }});
  }
  {
    auto* sub = app.add_subcommand("verify", "Verify the model signature of DIR, FILE or REPO@REV");
    struct Args {
      std::string target, key, signature, ns, ca;
      bool trust = false;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("target", a->target, "Model directory, a single-file model, or REPO[@REV] in the store")->required();
    sub->add_option("--key", a->key, "PEM public key of the signer");
    sub->add_flag("--trust", a->trust, "Use the trust store's keys for the repo's namespace instead of --key");
    sub->add_option("--ca", a->ca, "Certificate mode: PEM file of trusted root certificates");
    sub->add_option("--namespace", a->ns, "With --trust and a directory: the namespace it belongs to");
    sub->add_option("--signature", a->signature, "Bundle (default: model.sig in the model, or FILE.sig)");
    out->push_back({sub, [a, &flags]() -> int {
      auto t = ParseTarget(a->target);
      if (!t.ok()) return Fail(t.status());
      if (int(a->trust) + int(!a->key.empty()) + int(!a->ca.empty()) != 1) {
        return Fail(InvalidArgumentError("give exactly one of --key PUB, --ca ROOTS and --trust"));
      }
      std::unique_ptr<store::Store> st;
      GitOid commit;
      Result<std::string> bundle = InternalError("unset");
      if (t->is_dir) {
        bundle = ReadFileToString(a->signature.empty() ? t->DefaultSignature() : a->signature, 256 << 20);
      } else {
        auto opened = OpenStore(flags);
        if (!opened.ok()) return Fail(opened.status());
        st = std::move(*opened);
        auto c = st->Resolve(t->spec.repo, t->spec.rev);
        if (!c.ok()) return Fail(c.status());
        commit = *c;
        if (!a->signature.empty()) {
          bundle = ReadFileToString(a->signature, 256 << 20);
        } else {
          auto f = st->StatFile(commit, "model.sig");
          if (!f.ok()) return Fail(NotFoundError("no model.sig in " + t->spec.repo.str() + "@" + commit.hex()));
          auto reader = st->OpenFile(*f);
          if (!reader.ok()) return Fail(reader.status());
          bundle = (*reader)->ReadToString(0, f->size);
        }
      }
      if (!bundle.ok()) return Fail(bundle.status());
      Result<verify::VerifiedBundle> verified = InternalError("unset");
      std::string signer;
      if (a->trust) {
        auto trust = TrustFile(flags.data_dir + "/trust.json").Load();
        if (!trust.ok()) return Fail(trust.status());
        std::string ns = t->is_dir ? a->ns : t->spec.repo.str().substr(0, t->spec.repo.str().find('/'));
        verify::Manifest m;
        auto sig = verify::VerifyWithTrustStore(*bundle, *trust, ns, static_cast<int64_t>(std::time(nullptr)), &m);
        if (!sig.ok()) {
          std::printf("verdict: FAILED\n");
          return Fail(sig.status());
        }
        signer = sig->key_hint;
        std::printf("key: trusted '%s' for %s, hint %s\n", sig->key_name.c_str(), sig->ns.c_str(), sig->key_hint.c_str());
        verified = verify::VerifiedBundle{m, sig->key_hint, ""};
      } else if (!a->ca.empty()) {
        auto roots = ReadFileToString(a->ca, 4 << 20);
        if (!roots.ok()) return Fail(roots.status());
        verified = verify::VerifyCertificateBundle(*bundle, *roots);
        if (verified.ok()) {
          signer = verified->certificate_subject;
          std::printf("certificate: %s\n", signer.c_str());
        }
      } else {
        auto pem = ReadFileToString(a->key, 1 << 20);
        if (!pem.ok()) return Fail(pem.status());
        auto key = verify::PublicKey::FromPem(*pem);
        if (!key.ok()) return Fail(key.status().WithContext(a->key));
        signer = key->Hint();
        std::printf("key: %s, hint %s\n", std::string(verify::CurveName(key->curve())).c_str(), signer.c_str());
        verified = verify::VerifyBundle(*bundle, *key);
      }
      if (!verified.ok()) {
        std::printf("verdict: FAILED\n");
        return Fail(verified.status());
      }
      verify::Serialization ser = verified->manifest.serialization;
      for (const auto& p : verify::DefaultIgnorePaths()) {
        if (std::find(ser.ignore_paths.begin(), ser.ignore_paths.end(), p) == ser.ignore_paths.end()) {
          ser.ignore_paths.push_back(p);
        }
      }
      auto actual = t->is_dir ? verify::HashDirectory(t->dir, ser) : ManifestOfCommit(*st, t->spec.repo, commit, ser);
      if (!actual.ok()) return Fail(actual.status());
      for (const auto& r : verified->manifest.resources) {
        std::printf("  %s  %s\n", HexEncode(r.digest).c_str(), r.name.c_str());
      }
      Status cmp = verify::CompareManifests(verified->manifest, *actual);
      if (!cmp.ok()) {
        std::printf("verdict: FAILED\n");
        return Fail(cmp);
      }
      std::printf("verdict: OK — %zu resources (%s) signed by key %s\n", verified->manifest.resources.size(),
                  ser.method.c_str(), signer.c_str());
      return 0;
    }});
  }
}

}  // namespace hubnode::hub
