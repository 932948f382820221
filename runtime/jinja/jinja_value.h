// The values a Jinja template computes with, and their Python semantics (str(), repr(), ==, <,
// truthiness, json.dumps). Private to the runtime module.
//
// Lists and dicts are immutable once built (the sandbox forbids append and friends), so they are
// shared by reference like Python's objects. Namespaces and loop objects are mutable and may form
// cycles (`set ns.self = ns`), so the renderer owns them in an arena for one render and values
// hold plain pointers to them; nothing refcounted can form a cycle. List and dict nesting is
// bounded (kMaxValueDepth) so that destroying or printing a value cannot overflow the stack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "base/status.h"

namespace hubnode::runtime::jinja {

struct Node;
class Value;

// Deepest list/dict nesting a value may have (JSON contexts included).
inline constexpr int kMaxValueDepth = 256;

enum class Kind {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kDict,
  kNamespace,
  kCallable,
  kLoop,
};

class DictData;
struct NamespaceData;
struct LoopData;
struct Callable;

class Value {
 public:
  Value() = default;  // Undefined with no name.
  static Value Undefined(std::string hint);
  static Value None() { return Value(Rep(NoneTag{})); }
  static Value Bool(bool b) { return Value(Rep(b)); }
  static Value Int(int64_t i) { return Value(Rep(i)); }
  static Value Float(double d) { return Value(Rep(d)); }
  static Value String(std::string s);
  // ResourceExhausted when the result would nest deeper than kMaxValueDepth.
  static Result<Value> List(std::vector<Value> items, bool is_tuple = false);
  static Result<Value> Dict(DictData dict);
  static Value Namespace(NamespaceData* ns) { return Value(Rep(ns)); }
  static Value Loop(LoopData* loop) { return Value(Rep(loop)); }
  static Value Function(std::shared_ptr<const Callable> fn) { return Value(Rep(std::move(fn))); }

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_dict() const { return kind() == Kind::kDict; }
  // Python's numbers.Number: bool, int and float.
  bool is_number() const { return kind() == Kind::kBool || kind() == Kind::kInt || is_float(); }
  bool is_float() const { return kind() == Kind::kFloat; }
  // int or bool (bool is an int subclass in Python).
  bool is_integral() const { return kind() == Kind::kBool || kind() == Kind::kInt; }

  // Each REQUIRES the matching kind.
  bool AsBool() const { return std::get<bool>(v_); }
  int64_t AsInt() const;    // REQUIRES: is_integral().
  double AsDouble() const;  // REQUIRES: is_number().
  const std::string& AsString() const { return *std::get<StrPtr>(v_); }
  const std::vector<Value>& Items() const;  // REQUIRES: is_list().
  bool IsTuple() const;
  const DictData& AsDict() const { return *std::get<DictPtr>(v_); }
  NamespaceData* AsNamespace() const { return std::get<NamespaceData*>(v_); }
  LoopData* AsLoop() const { return std::get<LoopData*>(v_); }
  const Callable& AsCallable() const { return *std::get<FnPtr>(v_); }
  const std::string& UndefinedHint() const;
  // Nesting of lists and dicts (0 for scalars).
  int Depth() const;

 private:
  struct NoneTag {};
  struct UndefinedTag {
    std::shared_ptr<const std::string> hint;
  };
  struct ListRep;
  using StrPtr = std::shared_ptr<const std::string>;
  using ListPtr = std::shared_ptr<const ListRep>;
  using DictPtr = std::shared_ptr<const DictData>;
  using FnPtr = std::shared_ptr<const Callable>;
  // The order matches Kind.
  using Rep = std::variant<UndefinedTag, NoneTag, bool, int64_t, double, StrPtr, ListPtr, DictPtr,
                           NamespaceData*, FnPtr, LoopData*>;
  explicit Value(Rep rep) : v_(std::move(rep)) {}
  Rep v_;
};

// An insertion-ordered dict. Keys are strings, ints, floats, bools or None, hashed the way Python
// hashes them (1, 1.0 and True are the same key).
class DictData {
 public:
  const Value* Find(const Value& key) const;
  const Value* FindString(std::string_view key) const;
  // False when the key is unhashable (a list, dict, ...).
  bool Set(Value key, Value value);
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }

 private:
  friend class Value;
  std::vector<std::pair<Value, Value>> entries_;
  std::unordered_map<std::string, size_t> index_;
  int depth_ = 1;  // Set by Value::Dict.
};

struct NamespaceData {
  DictData attrs;
};

// The `loop` variable of one for loop; the renderer updates it in place each iteration.
struct LoopData {
  int64_t index0 = 0;
  int64_t length = 0;
  int depth0 = 0;
  Value previtem;  // Undefined on the first iteration.
  Value nextitem;  // Undefined on the last.
};

// Something a template can call: a global function, a bound method, a macro or loop.cycle.
struct Callable {
  enum class Type { kGlobal, kMethod, kMacro, kLoopCycle };
  Type type = Type::kGlobal;
  std::string name;
  Value self;                   // kMethod: the object; kLoopCycle: the loop.
  const Node* macro = nullptr;  // kMacro: its definition; the Template outlives the render.
};

// Python's str(): "None", "True", "1.5", "[1, 'a']"; Undefined is "". ResourceExhausted past
// `limit` bytes.
Result<std::string> ToStr(const Value& v, size_t limit);
// Python's repr().
Result<std::string> Repr(const Value& v, size_t limit);

struct JsonStyle {
  std::optional<std::string> indent;  // Newline and this per level; nullopt: one line.
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool ensure_ascii = false;
  bool sort_keys = false;
};
// Python's json.dumps(v, ...) with the given style. InvalidArgument for Undefined, namespaces,
// callables and loops (not JSON serializable).
Result<std::string> ToJson(const Value& v, const JsonStyle& style, size_t limit);

bool Truthy(const Value& v);
// Python ==: numbers compare across int/float/bool; lists and tuples never equal each other.
bool Equals(const Value& a, const Value& b);
// Python <: -1, 0 or 1; InvalidArgument where Python raises TypeError ('<' between str and int).
Result<int> Compare(const Value& a, const Value& b);
// Python's repr(float): shortest round trip, "1.0", "1e+16", "1e-05", "inf", "nan".
std::string FormatFloat(double d);
// The Jinja2 error-message name of a value's type: "dict object", "str object", "undefined".
std::string TypeName(const Value& v);

// Converts a JSON document. ResourceExhausted when deeper than kMaxValueDepth.
Result<Value> FromJson(const nlohmann::ordered_json& j);
Result<Value> FromJson(const nlohmann::json& j);

// UTF-8 helpers; strings index and slice by code point like Python's str.
size_t CodePointCount(std::string_view s);
// Byte offset of each code point, plus s.size() at the end.
std::vector<size_t> CodePointOffsets(std::string_view s);
std::string EncodeUtf8(uint32_t cp);
// The code point at s[i], advancing i past it; an invalid byte decodes as itself.
uint32_t DecodeAt(std::string_view s, size_t& i);

// Positional and keyword arguments of a filter, test, method or function call.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Python binding: the keyword `name`, else positional `index`; nullptr when neither is given.
  const Value* Get(size_t index, std::string_view name) const;
};

// What the builtins need from the renderer: budgets, the namespace arena and the clock.
class Env {
 public:
  virtual ~Env() = default;
  // Charges bytes built or scanned against Options::max_work_bytes.
  virtual Status Charge(uint64_t bytes) = 0;
  // Longest string (bytes) and list (items) a builtin may build.
  virtual size_t max_string() const = 0;
  virtual size_t max_items() const = 0;
  virtual NamespaceData* NewNamespace() = 0;
  virtual int64_t NowUnixSeconds() = 0;
  // raise_exception(): the returned status is exactly the template's message.
  virtual Status Raise(std::string message) = 0;
};

// The builtins (jinja_builtins.cc, jinja_filters.cc). InvalidArgument for unknown names and for
// Python's TypeError/ValueError cases.
Result<Value> ApplyFilter(Env& env, std::string_view name, const Value& input, const Args& args);
Result<bool> ApplyTest(Env& env, std::string_view name, const Value& input, const Args& args);
// Attribute lookup for a method name: a bound-method callable, or nullopt if `self` has no such
// method; mutating list/dict methods give an Undefined whose use is the sandbox's refusal.
std::optional<Value> GetMethod(const Value& self, std::string_view name);
Result<Value> CallMethod(Env& env, const Value& self, std::string_view name, const Args& args);
// Python's str methods (jinja_strings.cc).
bool IsStringMethod(std::string_view name);
Result<Value> CallStringMethod(Env& env, const std::string& s, std::string_view name,
                               const Args& args);
// range, namespace, dict, raise_exception, strftime_now; nullopt if `name` is not a global.
std::optional<Value> GetGlobal(std::string_view name);
Result<Value> CallGlobal(Env& env, std::string_view name, const Args& args);
// The tojson filter (jinja_json.cc) and number parsing and rounding (jinja_ops.cc).
Result<Value> ToJsonFilter(Env& env, const Value& v, const Args& args);
// Jinja's round(value, precision=0, method='common'): Python's round, ties to even.
Result<Value> Round(const Value& v, const Args& args);
// Python int(text, base) and float(text); nullopt where Python raises ValueError.
std::optional<int64_t> ParseInt(const std::string& text, int base);
std::optional<double> ParseFloat(const std::string& text);
// Helpers shared by the builtins and the evaluator.
Result<Value> MakeString(Env& env, std::string s);
// The items a for loop visits: list items, dict keys, string characters; nothing for Undefined.
Result<std::vector<Value>> Iterate(const Value& v);
Result<bool> Contains(const Value& container, const Value& item);
// Python len(); InvalidArgument for values without one.
Result<int64_t> Length(const Value& v);
// v[start:stop:step] for lists and strings; null pointers are omitted bounds.
Result<Value> Slice(Env& env, const Value& v, const Value* start, const Value* stop,
                    const Value* step);

}  // namespace hubnode::runtime::jinja
