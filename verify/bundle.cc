// Sigstore bundle v0.3 → DSSE envelope → in-toto Statement v1 → OMS predicate v1.0.
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "base/json_limits.h"
#include "verify/verify.h"

namespace hubnode::verify {
namespace {

using json = nlohmann::json;

constexpr std::string_view kBundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json";
constexpr std::string_view kBundleMediaTypeAlt = "application/vnd.dev.sigstore.bundle+json;version=0.3";
constexpr std::string_view kPayloadType = "application/vnd.in-toto+json";
constexpr std::string_view kStatementType = "https://in-toto.io/Statement/v1";
constexpr std::string_view kPredicateType = "https://model_signing/signature/v1.0";
constexpr size_t kMaxBundle = 256 << 20;

Status Malformed(std::string_view what) { return InvalidArgumentError("malformed bundle: " + std::string(what)); }

Result<const json*> Field(const json& obj, const char* key, json::value_t type, const char* where) {
  auto it = obj.find(key);
  bool ok = it != obj.end() && (it->type() == type ||
                                (type == json::value_t::number_unsigned && it->is_number_integer() && *it >= 0));
  if (!ok) return Malformed(std::string(where) + "." + key + " is missing or has the wrong type");
  return &*it;
}

json SerializationJson(const Serialization& s) {
  json j = {{"method", s.method}, {"hash_type", s.hash_type}, {"allow_symlinks", s.allow_symlinks},
            {"ignore_paths", s.ignore_paths}};
  if (s.method == "shards") j["shard_size"] = s.shard_size;
  return j;
}

Result<Serialization> ParseSerialization(const json& j) {
  if (!j.is_object()) return Malformed("predicate.serialization is not an object");
  Serialization s;
  ASSIGN_OR_RETURN(const json* method, Field(j, "method", json::value_t::string, "serialization"));
  s.method = method->get<std::string>();
  if (s.method != "files" && s.method != "shards") return Malformed("unknown serialization method '" + s.method + "'");
  s.hash_type = j.value("hash_type", std::string("sha256"));
  if (s.hash_type != "sha256") return UnimplementedError("hash_type '" + s.hash_type + "' is not supported (sha256 is)");
  if (j.contains("allow_symlinks")) {
    if (!j["allow_symlinks"].is_boolean()) return Malformed("serialization.allow_symlinks is not a boolean");
    s.allow_symlinks = j["allow_symlinks"].get<bool>();
  }
  if (j.contains("ignore_paths")) {
    if (!j["ignore_paths"].is_array()) return Malformed("serialization.ignore_paths is not an array");
    for (const auto& p : j["ignore_paths"]) {
      if (!p.is_string()) return Malformed("serialization.ignore_paths has a non-string entry");
      s.ignore_paths.push_back(p.get<std::string>());
    }
  }
  if (s.method == "shards") {
    // The reference tool may write it as a float (1000000000.0).
    auto it = j.find("shard_size");
    if (it == j.end() || !it->is_number()) return Malformed("serialization.shard_size is missing");
    double v = it->get<double>();
    if (!(v >= 1) || v > 1e15 || std::floor(v) != v) return Malformed("serialization.shard_size is not a positive integer");
    s.shard_size = static_cast<uint64_t>(v);
  }
  return s;
}

bool AlgorithmOk(const std::string& a) { return a == "sha256" || a.rfind("sha256-sharded-", 0) == 0; }

}  // namespace

std::string Base64Encode(std::string_view data) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(data[i]) << 16 | static_cast<uint8_t>(data[i + 1]) << 8 | static_cast<uint8_t>(data[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i < data.size()) {
    uint32_t v = static_cast<uint8_t>(data[i]) << 16;
    if (i + 1 < data.size()) v |= static_cast<uint8_t>(data[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return InvalidArgumentError("bad base64 length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = value(c);
    if (v < 0) return InvalidArgumentError("bad base64 character");
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string Pae(std::string_view type, std::string_view body) {
  std::string out = "DSSEv1 " + std::to_string(type.size()) + " ";
  out += type;
  out += " " + std::to_string(body.size()) + " ";
  out += body;
  return out;
}

Result<std::string> SignBundle(const Manifest& m, const PrivateKey& key) {
  if (m.resources.empty()) return InvalidArgumentError("nothing to sign: the manifest is empty");
  json resources = json::array();
  for (const auto& r : m.resources) {
    resources.push_back({{"name", r.name}, {"algorithm", r.algorithm}, {"digest", HexEncode(r.digest)}});
  }
  json statement = {
      {"_type", kStatementType},
      {"subject", json::array({{{"name", m.model_name.empty() ? "model" : m.model_name},
                                {"digest", {{"sha256", RootDigest(m).hex()}}}}})},
      {"predicateType", kPredicateType},
      {"predicate", {{"serialization", SerializationJson(m.serialization)}, {"resources", resources}}}};
  return SignStatement(statement.dump(), key);
}

Result<std::string> SignStatement(std::string_view payload, const PrivateKey& key) {
  ASSIGN_OR_RETURN(std::string sig, key.Sign(Pae(kPayloadType, payload)));
  json bundle = {
      {"mediaType", kBundleMediaType},
      {"verificationMaterial", {{"publicKey", {{"hint", key.public_key().Hint()}}}, {"tlogEntries", json::array()}}},
      {"dsseEnvelope",
       {{"payload", Base64Encode(payload)},
        {"payloadType", kPayloadType},
        {"signatures", json::array({{{"sig", Base64Encode(sig)}, {"keyid", ""}}})}}}};
  return bundle.dump(2) + "\n";
}

Result<OpenedStatement> OpenStatement(std::string_view text, const PublicKey& key) {
  if (text.size() > kMaxBundle) return Malformed("larger than 256 MiB");
  json b = (JsonDepthWithin(text) ? json::parse(text.begin(), text.end(), nullptr, false) : json(json::value_t::discarded));
  if (b.is_discarded() || !b.is_object()) return Malformed("not a JSON object");
  ASSIGN_OR_RETURN(const json* media, Field(b, "mediaType", json::value_t::string, "bundle"));
  if (*media != kBundleMediaType && *media != kBundleMediaTypeAlt) {
    return Malformed("mediaType '" + media->get<std::string>().substr(0, 100) + "' is not a Sigstore bundle v0.3");
  }
  ASSIGN_OR_RETURN(const json* env, Field(b, "dsseEnvelope", json::value_t::object, "bundle"));
  ASSIGN_OR_RETURN(const json* ptype, Field(*env, "payloadType", json::value_t::string, "dsseEnvelope"));
  if (*ptype != kPayloadType) return Malformed("payloadType is not " + std::string(kPayloadType));
  ASSIGN_OR_RETURN(const json* payload_b64, Field(*env, "payload", json::value_t::string, "dsseEnvelope"));
  auto payload = Base64Decode(payload_b64->get<std::string>());
  if (!payload.ok()) return Malformed("dsseEnvelope.payload: " + payload.status().message());
  ASSIGN_OR_RETURN(const json* sigs, Field(*env, "signatures", json::value_t::array, "dsseEnvelope"));
  if (sigs->empty() || !(*sigs)[0].is_object()) return Malformed("dsseEnvelope.signatures is empty");
  ASSIGN_OR_RETURN(const json* sig_b64, Field((*sigs)[0], "sig", json::value_t::string, "signatures[0]"));
  auto sig = Base64Decode(sig_b64->get<std::string>());
  if (!sig.ok()) return Malformed("signatures[0].sig: " + sig.status().message());

  OpenedStatement out;
  // Every bundle carries verificationMaterial (OMS §4.1): a key-mode bundle names its key by
  // `publicKey.hint` (or, before v1.1.0 of the reference tool, `publicKey.rawBytes`); a
  // certificate-mode bundle carries the chain, which VerifyCertificateBundle checks. One without is
  // invalid even when the verifier is handed a key.
  ASSIGN_OR_RETURN(const json* vm, Field(b, "verificationMaterial", json::value_t::object, "bundle"));
  if (auto pk = vm->find("publicKey"); pk != vm->end()) {
    if (!pk->is_object()) return Malformed("verificationMaterial.publicKey is not an object");
    if (auto hint = pk->find("hint"); hint != pk->end() && hint->is_string()) {
      out.key_hint = hint->get<std::string>();
      if (out.key_hint != key.Hint()) {
        return PermissionDeniedError("the bundle names key " + out.key_hint.substr(0, 64) + ", not the given key " +
                                     key.Hint());
      }
    } else if (auto raw = pk->find("rawBytes"); raw != pk->end() && raw->is_string()) {
      auto pem = Base64Decode(raw->get<std::string>());
      auto named = pem.ok() ? PublicKey::FromPem(*pem) : Result<PublicKey>(pem.status());
      if (!named.ok()) return Malformed("verificationMaterial.publicKey.rawBytes is not a PEM public key");
      if (named->Hint() != key.Hint()) {
        return PermissionDeniedError("the bundle names key " + named->Hint() + ", not the given key " + key.Hint());
      }
      out.key_hint = named->Hint();
    } else {
      return Malformed("verificationMaterial.publicKey has neither a hint nor rawBytes");
    }
  } else if (!vm->contains("x509CertificateChain") && !vm->contains("certificate")) {
    return Malformed("verificationMaterial names no key and carries no certificate");
  }
  // The signature covers exactly the payload bytes we were given; callers parse those same bytes.
  RETURN_IF_ERROR(key.Verify(Pae(kPayloadType, *payload), *sig));
  out.payload = std::move(*payload);
  return out;
}

Result<VerifiedBundle> VerifyBundle(std::string_view text, const PublicKey& key) {
  ASSIGN_OR_RETURN(OpenedStatement opened, OpenStatement(text, key));
  VerifiedBundle out;
  out.key_hint = opened.key_hint;
  const std::string* payload = &opened.payload;
  json st = (JsonDepthWithin(*payload) ? json::parse(*payload, nullptr, false) : json(json::value_t::discarded));
  if (st.is_discarded() || !st.is_object()) return Malformed("payload is not a JSON object");
  ASSIGN_OR_RETURN(const json* type, Field(st, "_type", json::value_t::string, "statement"));
  if (*type != kStatementType) return Malformed("statement _type is not " + std::string(kStatementType));
  ASSIGN_OR_RETURN(const json* ptype2, Field(st, "predicateType", json::value_t::string, "statement"));
  if (*ptype2 != kPredicateType) {
    return UnimplementedError("predicateType '" + ptype2->get<std::string>().substr(0, 100) + "' is not supported");
  }
  ASSIGN_OR_RETURN(const json* subjects, Field(st, "subject", json::value_t::array, "statement"));
  if (subjects->size() != 1 || !(*subjects)[0].is_object()) return Malformed("statement must have exactly one subject");
  ASSIGN_OR_RETURN(const json* digest, Field((*subjects)[0], "digest", json::value_t::object, "subject[0]"));
  ASSIGN_OR_RETURN(const json* root_hex, Field(*digest, "sha256", json::value_t::string, "subject[0].digest"));
  auto root = Sha256Digest::FromHex(root_hex->get<std::string>());
  if (!root.ok()) return Malformed("subject digest is not 64 hex digits");
  out.manifest.model_name = (*subjects)[0].value("name", std::string());

  ASSIGN_OR_RETURN(const json* pred, Field(st, "predicate", json::value_t::object, "statement"));
  ASSIGN_OR_RETURN(const json* ser, Field(*pred, "serialization", json::value_t::object, "predicate"));
  ASSIGN_OR_RETURN(out.manifest.serialization, ParseSerialization(*ser));
  ASSIGN_OR_RETURN(const json* resources, Field(*pred, "resources", json::value_t::array, "predicate"));
  std::set<std::string> names;
  for (const auto& r : *resources) {
    if (!r.is_object()) return Malformed("a resource is not an object");
    ASSIGN_OR_RETURN(const json* name, Field(r, "name", json::value_t::string, "resource"));
    ASSIGN_OR_RETURN(const json* alg, Field(r, "algorithm", json::value_t::string, "resource"));
    ASSIGN_OR_RETURN(const json* dig, Field(r, "digest", json::value_t::string, "resource"));
    Resource res{name->get<std::string>(), alg->get<std::string>(), ""};
    if (!AlgorithmOk(res.algorithm)) return UnimplementedError("resource algorithm '" + res.algorithm + "' is not supported");
    auto d = Sha256Digest::FromHex(dig->get<std::string>());
    if (!d.ok()) return Malformed("resource " + res.name + " has a digest that is not 64 hex digits");
    res.digest = std::string(d->view());
    if (!names.insert(res.name).second) return Malformed("duplicate resource " + res.name);
    out.manifest.resources.push_back(std::move(res));
  }
  if (out.manifest.resources.empty()) return Malformed("predicate.resources is empty");
  if (RootDigest(out.manifest) != *root) return Malformed("subject digest does not match the listed resources");
  return out;
}

}  // namespace hubnode::verify
