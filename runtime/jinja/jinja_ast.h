// Tokens and the syntax tree of the Jinja interpreter. Private to the runtime module.
//
// The lexer applies all whitespace control (trim_blocks, lstrip_blocks, `-`/`+` markers) so that
// the parser and evaluator only see data text; the tree is immutable after parsing and shared
// by every render.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "runtime/jinja/jinja.h"
#include "runtime/jinja/jinja_value.h"

namespace hubnode::runtime::jinja {

// Largest template source Parse() accepts.
inline constexpr size_t kMaxSourceBytes = size_t{1} << 20;
// Deepest nesting of statements and expressions the parser accepts; the evaluator recurses
// along the same tree, so this also bounds its stack.
inline constexpr int kMaxParseDepth = 256;

enum class TokenType {
  kData,
  kVarBegin,
  kVarEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEof,
};

struct Token {
  TokenType type = TokenType::kEof;
  std::string text;  // Data text, name, decoded string literal, or the operator.
  int line = 1;
  int column = 1;
  int64_t int_value = 0;
  double float_value = 0;
};

// Splits a template into tokens, with newlines normalised to "\n", one trailing newline dropped
// (Jinja2's keep_trailing_newline=False) and whitespace control applied to data tokens.
// InvalidArgument ("line:column: why") for unterminated tags, comments, raw blocks or strings and
// for characters Jinja does not accept.
Result<std::vector<Token>> Lex(std::string_view source, const Options& options);

enum class NodeType {
  // Statements.
  kBody,         // body: the statements in order (the template root and {% generation %} blocks).
  kText,         // name: the text.
  kOutput,       // a: the expression.
  kIf,           // a: condition; body; else_body (an elif is a nested kIf).
  kFor,          // targets; a: iterable; b: filter or null; body; else_body.
  kSet,          // targets (or targets[0] and attr); a: value.
  kSetBlock,     // targets; body; b: filter chain over a null object, or null.
  kMacro,        // name; params; body.
  kFilterBlock,  // b: filter chain over a null object; body.
  kBreak,
  kContinue,
  // Expressions.
  kConst,     // constant.
  kName,      // name.
  kList,      // args.
  kTuple,     // args.
  kDict,      // args: key, value, key, value, ...
  kGetAttr,   // a.name
  kGetItem,   // a[b]
  kSlice,     // a[args[0]:args[1]:args[2]], each possibly null.
  kCall,      // a(args, kwargs)
  kFilter,    // a|name(args, kwargs); a null: the enclosing block's content.
  kTest,      // a is [not] name(args)
  kNeg,       // -a
  kPos,       // +a
  kNot,       // not a
  kBinary,    // a op b (arithmetic)
  kCompare,   // args[0] ops[0] args[1] ops[1] args[2] ...
  kAnd,       // a and b
  kOr,        // a or b
  kCondExpr,  // b if a else c (c may be null)
  kConcat,    // args joined with ~
};

enum class Op {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kFloorDiv,
  kMod,
  kPow,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kNotIn,
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Node {
  NodeType type = NodeType::kBody;
  int line = 0;
  int depth = 1;  // Expressions: the height of this subtree.
  std::string name;
  std::string attr;  // kSet on a namespace: the attribute.
  Value constant;
  Op op = Op::kAdd;
  bool negated = false;
  NodePtr a, b, c;
  std::vector<NodePtr> args;
  std::vector<std::pair<std::string, NodePtr>> kwargs;  // kMacro: params and their defaults.
  std::vector<Op> ops;
  std::vector<NodePtr> body, else_body;
  std::vector<std::string> targets;
};

// Operators and lookups (jinja_ops.cc). Jinja's getattr tries the attribute (dict and str
// methods, namespace attributes, loop fields) before the item; getitem the item first. Missing
// ones are Undefined; any access on an Undefined is its error.
Status UndefinedError(const Value& v);
Result<Value> GetAttr(const Value& obj, const std::string& name);
Result<Value> GetItem(Env& env, const Value& obj, const Value& key);
// Unary - (negate) or +.
Result<Value> Unary(bool negate, const Value& v);
// One comparison: == != < <= > >= in, not in.
Result<bool> CompareOp(Op op, const Value& left, const Value& right);
// + - * / // % ** with Python's types; 64-bit integers, overflow is InvalidArgument.
Result<Value> Arith(Env& env, Op op, const Value& a, const Value& b);

// The renderer's budgets and arenas, and the services builtins need (jinja_ops.cc).
class Budget : public Env {
 public:
  explicit Budget(const Options& options) : opt_(options) {}

  Status Charge(uint64_t bytes) override;
  size_t max_string() const override { return opt_.max_output_bytes; }
  size_t max_items() const override { return static_cast<size_t>(opt_.max_loop_iterations); }
  NamespaceData* NewNamespace() override;
  int64_t NowUnixSeconds() override;
  Status Raise(std::string message) override;

 protected:
  // One loop iteration, which is also a step (an empty loop body evaluates nothing).
  Status Tick();
  LoopData* NewLoop();

  const Options& opt_;
  uint64_t steps_ = 0;
  bool raised_ = false;  // The error on its way out came from raise_exception().

 private:
  uint64_t iterations_ = 0;
  uint64_t work_ = 0;
  // Namespaces and loop objects live until the render ends: they may reference each other.
  std::vector<std::unique_ptr<NamespaceData>> namespaces_;
  std::vector<std::unique_ptr<LoopData>> loops_;
};

// Renders a parsed tree with a dict context (jinja_eval.cc).
Result<std::string> RenderTree(const Node& root, const Options& options, const Value& context);

// Builds the tree. InvalidArgument ("line:column: why") on syntax errors and unsupported tags;
// ResourceExhausted past kMaxParseDepth.
Result<std::shared_ptr<const Node>> ParseTokens(const std::vector<Token>& tokens);

// The recursive-descent parser behind ParseTokens(), after jinja2/parser.py (3.1). Statements are
// parsed in jinja_parser.cc, expressions in jinja_parser_expr.cc.
//
// Precedence, lowest first: `x if c else y`; or; and; not; comparisons and (not) in; + -; ~;
// * / // %; **; unary - +; then postfix (.attr, [item], [a:b:c], call), filters and tests
// (`a|f`, `a is t`). Unary minus binds tighter than ** as in Jinja (-2**2 is 4).
//
// Both recursion and the depth of the resulting tree are bounded by kMaxParseDepth: long
// left-leaning chains (`a+a+a+...`, `x|f|f|f...`) make deep trees without deep recursion here,
// and the evaluator walks the tree recursively.
class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : t_(tokens) {}

  Result<std::shared_ptr<const Node>> Run();

 private:
  using Names = std::initializer_list<std::string_view>;

  // Counts one level of nesting for as long as it lives.
  class Nest {
   public:
    explicit Nest(int& depth) : depth_(depth) { ++depth_; }
    ~Nest() { --depth_; }
    bool too_deep() const { return depth_ > kMaxParseDepth; }

   private:
    int& depth_;
  };
  static int DepthOf(const NodePtr& n) { return n ? n->depth : 0; }
  const Token& Cur() const { return t_[pos_]; }
  const Token& Peek() const { return t_[std::min(pos_ + 1, t_.size() - 1)]; }
  void Next() {
    if (pos_ + 1 < t_.size()) ++pos_;
  }
  bool IsOp(std::string_view op) const { return Cur().type == TokenType::kOp && Cur().text == op; }
  bool IsName(std::string_view name) const {
    return Cur().type == TokenType::kName && Cur().text == name;
  }
  bool SkipOp(std::string_view op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(std::string_view name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }
  static std::string Describe(const Token& t) {
    switch (t.type) {
      case TokenType::kEof:
        return "end of template";
      case TokenType::kVarEnd:
        return "end of print statement";
      case TokenType::kBlockEnd:
        return "end of statement block";
      case TokenType::kData:
        return "template data";
      case TokenType::kString:
        return "string";
      default:
        return "'" + t.text + "'";
    }
  }
  static Status Error(const Token& t, const std::string& why) {
    return InvalidArgumentError(std::to_string(t.line) + ":" + std::to_string(t.column) + ": " +
                                why);
  }
  Status Expect(std::string_view op) {
    if (SkipOp(op)) return OkStatus();
    return Error(Cur(), "expected '" + std::string(op) + "', got " + Describe(Cur()));
  }
  Status ExpectBlockEnd() {
    if (Cur().type != TokenType::kBlockEnd) {
      return Error(Cur(), "expected end of statement block, got " + Describe(Cur()));
    }
    Next();
    return OkStatus();
  }
  Result<std::string> ExpectName() {
    if (Cur().type != TokenType::kName)
      return Error(Cur(), "expected name, got " + Describe(Cur()));
    std::string name = Cur().text;
    Next();
    return name;
  }
  NodePtr New(NodeType type, const Token& at) const {
    auto n = std::make_unique<Node>();
    n->type = type;
    n->line = at.line;
    return n;
  }
  // Records an expression node's tree depth; deeper than kMaxParseDepth is an error.
  Result<NodePtr> Seal(NodePtr n) const {
    int d = std::max({DepthOf(n->a), DepthOf(n->b), DepthOf(n->c)});
    for (const auto& arg : n->args) d = std::max(d, DepthOf(arg));
    for (const auto& [name, arg] : n->kwargs) d = std::max(d, DepthOf(arg));
    n->depth = d + 1;
    if (n->depth > kMaxParseDepth) {
      return ResourceExhaustedError("line " + std::to_string(n->line) +
                                    ": expression nests too deeply");
    }
    return n;
  }
  Status TooDeep() const {
    return ResourceExhaustedError(std::to_string(Cur().line) + ":" + std::to_string(Cur().column) +
                                  ": template nests deeper than " + std::to_string(kMaxParseDepth) +
                                  " levels");
  }

  // Statements (jinja_parser.cc).
  Result<std::vector<NodePtr>> ParseBody(Names end);
  Status EndTag(std::string_view name);
  Result<NodePtr> ParseStatement();
  Result<NodePtr> ParseFor();
  Result<NodePtr> ParseIf();
  Result<NodePtr> ParseSet();
  Result<NodePtr> ParseMacro();
  Result<NodePtr> ParseFilterBlock();
  // Expressions (jinja_parser_expr.cc).
  bool IsTupleEnd(Names extra) const;
  Result<NodePtr> ParseTuple(bool condexpr, bool explicit_parens, Names extra);
  Result<NodePtr> ParseExpression(bool condexpr);
  Result<NodePtr> ParseOr();
  Result<NodePtr> ParseAnd();
  Result<NodePtr> ParseNot();
  Result<NodePtr> ParseCompare();
  Result<NodePtr> Binary(Op op, NodePtr left, NodePtr right, const Token& at);
  Result<NodePtr> ParseMath1();
  Result<NodePtr> ParseConcat();
  Result<NodePtr> ParseMath2();
  Result<NodePtr> ParsePow();
  Result<NodePtr> ParseUnary(bool with_filter);
  Result<NodePtr> ParsePrimary();
  Result<NodePtr> ParsePostfix(NodePtr node);
  Result<NodePtr> ParseSubscript(NodePtr object, const Token& at);
  Status ParseArgs(Node& n);
  Result<NodePtr> ParseCall(NodePtr callee);
  Result<NodePtr> ParseFilter(NodePtr object, bool start_inline);
  Result<NodePtr> ParseTest(NodePtr object);

  const std::vector<Token>& t_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace hubnode::runtime::jinja
