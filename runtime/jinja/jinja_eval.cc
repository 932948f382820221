// The Jinja evaluator: walks the tree against a scope chain and writes the output.
//
// Scoping follows Jinja2: a for loop body gets a fresh scope per iteration (assignments inside it
// never leak out, hence namespace()), if blocks share their enclosing scope, and a macro body sees
// its arguments and then the template's top-level variables. Every evaluation counts a step and
// one level of nesting; both are bounded, as are output size and the work budget.
#include <ctime>
#include <unordered_map>

#include "runtime/jinja/jinja_ast.h"

namespace hubnode::runtime::jinja {
namespace {

// Jinja2 refuses anything deeper; it also keeps our recursion well inside a thread's stack.
constexpr int kMaxEvalNesting = 1024;

struct Scope {
  std::unordered_map<std::string, Value> vars;
  const Scope* parent = nullptr;
};

class Renderer : public Budget {
 public:
  explicit Renderer(const Options& options) : Budget(options) {}

  Result<std::string> Run(const Node& root, const Value& context) {
    Scope scope;
    for (const auto& [key, value] : context.AsDict().entries()) {
      if (key.is_string()) scope.vars[key.AsString()] = value;
    }
    root_ = &scope;
    std::string out;
    out_ = &out;
    Status s = ExecBody(root.body, scope);
    if (!s.ok()) return s;
    return out;
  }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  // One step and one level of nesting for as long as it lives.
  class Enter {
   public:
    explicit Enter(Renderer& r) : r_(r) { ++r_.nesting_; }
    ~Enter() { --r_.nesting_; }
    Status Check() {
      if (++r_.steps_ > r_.opt_.max_steps) {
        return ResourceExhaustedError("template rendering exceeded " +
                                      std::to_string(r_.opt_.max_steps) + " steps");
      }
      if (r_.nesting_ > kMaxEvalNesting) {
        return ResourceExhaustedError("template evaluation nests too deeply");
      }
      return OkStatus();
    }

   private:
    Renderer& r_;
  };

  Status Write(std::string_view s) {
    if (out_->size() + s.size() > opt_.max_output_bytes) {
      return ResourceExhaustedError("rendered template exceeds " +
                                    std::to_string(opt_.max_output_bytes) + " bytes");
    }
    RETURN_IF_ERROR(Charge(s.size()));
    out_->append(s);
    return OkStatus();
  }

  // Adds "line N: " to the first error on its way out, unless the template raised it itself.
  Status Locate(Status s, const Node& n) {
    if (s.ok() || located_ || raised_) return s;
    located_ = true;
    return Status(s.code(), "line " + std::to_string(n.line) + ": " + s.message());
  }

  Status ExecBody(const std::vector<NodePtr>& body, Scope& scope) {
    for (const auto& n : body) {
      RETURN_IF_ERROR(Locate(Exec(*n, scope), *n));
      if (flow_ != Flow::kNormal) return OkStatus();
    }
    return OkStatus();
  }

  // Runs `body` with the output captured.
  Result<std::string> Capture(const std::vector<NodePtr>& body, Scope& scope) {
    std::string buffer;
    std::string* saved = out_;
    out_ = &buffer;
    Status s = ExecBody(body, scope);
    out_ = saved;
    if (!s.ok()) return s;
    return buffer;
  }

  Status Exec(const Node& n, Scope& scope) {
    Enter enter(*this);
    RETURN_IF_ERROR(enter.Check());
    switch (n.type) {
      case NodeType::kBody:
        return ExecBody(n.body, scope);
      case NodeType::kText:
        return Write(n.name);
      case NodeType::kOutput: {
        ASSIGN_OR_RETURN(Value v, Eval(*n.a, scope));
        ASSIGN_OR_RETURN(std::string s, ToStr(v, opt_.max_output_bytes));
        return Write(s);
      }
      case NodeType::kIf: {
        ASSIGN_OR_RETURN(Value cond, Eval(*n.a, scope));
        return ExecBody(Truthy(cond) ? n.body : n.else_body, scope);
      }
      case NodeType::kFor:
        return ExecFor(n, scope);
      case NodeType::kSet: {
        ASSIGN_OR_RETURN(Value v, Eval(*n.a, scope));
        return Assign(n, std::move(v), scope);
      }
      case NodeType::kSetBlock:
      case NodeType::kFilterBlock: {
        ASSIGN_OR_RETURN(std::string text, Capture(n.body, scope));
        Value v = Value::String(std::move(text));
        if (n.b) {
          block_input_ = &v;
          auto filtered = Eval(*n.b, scope);
          block_input_ = nullptr;
          if (!filtered.ok()) return filtered.status();
          v = std::move(filtered).value();
        }
        if (n.type == NodeType::kSetBlock) return Assign(n, std::move(v), scope);
        ASSIGN_OR_RETURN(std::string s, ToStr(v, opt_.max_output_bytes));
        return Write(s);
      }
      case NodeType::kMacro: {
        auto fn = std::make_shared<Callable>();
        fn->type = Callable::Type::kMacro;
        fn->name = n.name;
        fn->macro = &n;
        scope.vars[n.name] = Value::Function(std::move(fn));
        return OkStatus();
      }
      case NodeType::kBreak:
        flow_ = Flow::kBreak;
        return OkStatus();
      case NodeType::kContinue:
        flow_ = Flow::kContinue;
        return OkStatus();
      default:
        return InternalError("expression node in statement position");
    }
  }

  Status Unpack(const std::vector<std::string>& targets, Value v, Scope& scope) {
    if (targets.size() == 1) {
      scope.vars[targets[0]] = std::move(v);
      return OkStatus();
    }
    if (!v.is_list()) {
      return InvalidArgumentError("cannot unpack non-iterable " + TypeName(v) + " object");
    }
    if (v.Items().size() != targets.size()) {
      return InvalidArgumentError("expected " + std::to_string(targets.size()) +
                                  " values to unpack, got " + std::to_string(v.Items().size()));
    }
    for (size_t i = 0; i < targets.size(); ++i) scope.vars[targets[i]] = v.Items()[i];
    return OkStatus();
  }

  Status Assign(const Node& n, Value v, Scope& scope) {
    if (n.attr.empty()) return Unpack(n.targets, std::move(v), scope);
    Value target = Lookup(n.targets[0], scope);
    if (target.kind() != Kind::kNamespace) {
      return InvalidArgumentError("cannot assign attribute on non-namespace object");
    }
    target.AsNamespace()->attrs.Set(Value::String(n.attr), std::move(v));
    return OkStatus();
  }

  Status ExecFor(const Node& n, Scope& scope) {
    ASSIGN_OR_RETURN(Value iterable, Eval(*n.a, scope));
    ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(iterable));
    if (n.b) {  // `for x in xs if cond`: filtered before loop.length is known.
      std::vector<Value> kept;
      for (Value& item : items) {
        RETURN_IF_ERROR(Tick());
        Scope probe{{}, &scope};
        RETURN_IF_ERROR(Unpack(n.targets, item, probe));
        ASSIGN_OR_RETURN(Value keep, Eval(*n.b, probe));
        if (Truthy(keep)) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      Scope else_scope{{}, &scope};
      return ExecBody(n.else_body, else_scope);
    }
    LoopData* loop = NewLoop();
    loop->length = static_cast<int64_t>(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      RETURN_IF_ERROR(Tick());
      Scope iteration{{}, &scope};
      RETURN_IF_ERROR(Unpack(n.targets, items[i], iteration));
      loop->index0 = static_cast<int64_t>(i);
      loop->previtem = i > 0 ? items[i - 1] : Value::Undefined("there is no previous item");
      loop->nextitem =
          i + 1 < items.size() ? items[i + 1] : Value::Undefined("there is no next item");
      iteration.vars["loop"] = Value::Loop(loop);
      RETURN_IF_ERROR(ExecBody(n.body, iteration));
      Flow flow = flow_;
      flow_ = Flow::kNormal;
      if (flow == Flow::kBreak) break;
    }
    return OkStatus();
  }

  Value Lookup(const std::string& name, const Scope& scope) const {
    for (const Scope* s = &scope; s != nullptr; s = s->parent) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return it->second;
    }
    if (auto g = GetGlobal(name)) return *g;
    return Value::Undefined("'" + name + "' is undefined");
  }

  Result<Value> Eval(const Node& n, Scope& scope) {
    Enter enter(*this);
    RETURN_IF_ERROR(enter.Check());
    ASSIGN_OR_RETURN(Value v, EvalInner(n, scope));
    switch (n.type) {  // Charge what was newly built.
      case NodeType::kConst:
      case NodeType::kName:
      case NodeType::kGetAttr:
      case NodeType::kGetItem:
        break;
      default:
        if (v.is_string()) RETURN_IF_ERROR(Charge(v.AsString().size()));
        if (v.is_list()) RETURN_IF_ERROR(Charge(16 * v.Items().size()));
        if (v.is_dict()) RETURN_IF_ERROR(Charge(48 * v.AsDict().size()));
    }
    return v;
  }

  Result<Value> EvalInner(const Node& n, Scope& scope) {
    switch (n.type) {
      case NodeType::kConst:
        return n.constant;
      case NodeType::kName:
        return Lookup(n.name, scope);
      case NodeType::kList:
      case NodeType::kTuple: {
        std::vector<Value> items;
        for (const auto& arg : n.args) {
          ASSIGN_OR_RETURN(Value item, Eval(*arg, scope));
          items.push_back(std::move(item));
        }
        return Value::List(std::move(items), n.type == NodeType::kTuple);
      }
      case NodeType::kDict: {
        DictData d;
        for (size_t i = 0; i + 1 < n.args.size(); i += 2) {
          ASSIGN_OR_RETURN(Value key, Eval(*n.args[i], scope));
          ASSIGN_OR_RETURN(Value value, Eval(*n.args[i + 1], scope));
          if (!d.Set(key, std::move(value))) {
            return InvalidArgumentError("unhashable type: '" + TypeName(key) + "'");
          }
        }
        return Value::Dict(std::move(d));
      }
      case NodeType::kGetAttr: {
        ASSIGN_OR_RETURN(Value obj, Eval(*n.a, scope));
        return GetAttr(obj, n.name);
      }
      case NodeType::kGetItem: {
        ASSIGN_OR_RETURN(Value obj, Eval(*n.a, scope));
        ASSIGN_OR_RETURN(Value key, Eval(*n.b, scope));
        return GetItem(*this, obj, key);
      }
      case NodeType::kSlice: {
        ASSIGN_OR_RETURN(Value obj, Eval(*n.a, scope));
        Value bounds[3];
        const Value* ptrs[3] = {nullptr, nullptr, nullptr};
        for (int i = 0; i < 3; ++i) {
          if (!n.args[i]) continue;
          ASSIGN_OR_RETURN(bounds[i], Eval(*n.args[i], scope));
          ptrs[i] = &bounds[i];
        }
        return Slice(*this, obj, ptrs[0], ptrs[1], ptrs[2]);
      }
      case NodeType::kCall:
        return EvalCall(n, scope);
      case NodeType::kFilter: {
        Value input;
        if (n.a) {
          ASSIGN_OR_RETURN(input, Eval(*n.a, scope));
        } else if (block_input_ != nullptr) {
          input = *block_input_;
        }
        ASSIGN_OR_RETURN(Args args, EvalArgs(n, scope));
        return ApplyFilter(*this, n.name, input, args);
      }
      case NodeType::kTest: {
        ASSIGN_OR_RETURN(Value input, Eval(*n.a, scope));
        ASSIGN_OR_RETURN(Args args, EvalArgs(n, scope));
        ASSIGN_OR_RETURN(bool result, ApplyTest(*this, n.name, input, args));
        return Value::Bool(result != n.negated);
      }
      case NodeType::kNot: {
        ASSIGN_OR_RETURN(Value v, Eval(*n.a, scope));
        return Value::Bool(!Truthy(v));
      }
      case NodeType::kNeg:
      case NodeType::kPos: {
        ASSIGN_OR_RETURN(Value v, Eval(*n.a, scope));
        return Unary(n.type == NodeType::kNeg, v);
      }
      case NodeType::kAnd:
      case NodeType::kOr: {
        ASSIGN_OR_RETURN(Value left, Eval(*n.a, scope));
        if (Truthy(left) == (n.type == NodeType::kOr)) return left;
        return Eval(*n.b, scope);
      }
      case NodeType::kCondExpr: {
        ASSIGN_OR_RETURN(Value test, Eval(*n.a, scope));
        if (Truthy(test)) return Eval(*n.b, scope);
        if (n.c) return Eval(*n.c, scope);
        return Value::Undefined(
            "the inline if-expression evaluated to false and no else section "
            "was defined.");
      }
      case NodeType::kConcat: {
        std::string s;
        for (const auto& arg : n.args) {
          ASSIGN_OR_RETURN(Value v, Eval(*arg, scope));
          ASSIGN_OR_RETURN(std::string part, ToStr(v, opt_.max_output_bytes));
          s += part;
          if (s.size() > opt_.max_output_bytes) return ResourceExhaustedError("string too long");
        }
        return Value::String(std::move(s));
      }
      case NodeType::kCompare:
        return EvalCompare(n, scope);
      case NodeType::kBinary: {
        ASSIGN_OR_RETURN(Value left, Eval(*n.a, scope));
        ASSIGN_OR_RETURN(Value right, Eval(*n.b, scope));
        return Arith(*this, n.op, left, right);
      }
      default:
        return InternalError("statement node in expression position");
    }
  }

  Result<Args> EvalArgs(const Node& n, Scope& scope) {
    Args args;
    for (const auto& arg : n.args) {
      ASSIGN_OR_RETURN(Value v, Eval(*arg, scope));
      args.pos.push_back(std::move(v));
    }
    for (const auto& [name, arg] : n.kwargs) {
      ASSIGN_OR_RETURN(Value v, Eval(*arg, scope));
      args.kw.emplace_back(name, std::move(v));
    }
    return args;
  }

  Result<Value> EvalCompare(const Node& n, Scope& scope) {
    ASSIGN_OR_RETURN(Value left, Eval(*n.args[0], scope));
    for (size_t i = 0; i < n.ops.size(); ++i) {
      ASSIGN_OR_RETURN(Value right, Eval(*n.args[i + 1], scope));
      ASSIGN_OR_RETURN(bool result, CompareOp(n.ops[i], left, right));
      if (!result) return Value::Bool(false);
      left = std::move(right);
    }
    return Value::Bool(true);
  }

  Result<Value> EvalCall(const Node& n, Scope& scope) {
    ASSIGN_OR_RETURN(Value fn, Eval(*n.a, scope));
    if (fn.is_undefined()) return UndefinedError(fn);
    if (fn.kind() != Kind::kCallable) {
      return InvalidArgumentError("'" + TypeName(fn) + "' object is not callable");
    }
    ASSIGN_OR_RETURN(Args args, EvalArgs(n, scope));
    const Callable& c = fn.AsCallable();
    switch (c.type) {
      case Callable::Type::kGlobal:
        return CallGlobal(*this, c.name, args);
      case Callable::Type::kMethod:
        return CallMethod(*this, c.self, c.name, args);
      case Callable::Type::kLoopCycle: {
        if (args.pos.empty()) return InvalidArgumentError("no items for cycling given");
        const LoopData& l = *c.self.AsLoop();
        return args.pos[static_cast<size_t>(l.index0) % args.pos.size()];
      }
      case Callable::Type::kMacro:
        return CallMacro(*c.macro, std::move(args));
    }
    return InternalError("unknown callable");
  }

  Result<Value> CallMacro(const Node& macro, Args args) {
    if (++call_depth_ > opt_.max_call_depth) {
      --call_depth_;
      return ResourceExhaustedError("macro calls nest deeper than " +
                                    std::to_string(opt_.max_call_depth));
    }
    auto result = RunMacro(macro, std::move(args));
    --call_depth_;
    return result;
  }

  Result<Value> RunMacro(const Node& macro, Args args) {
    const auto& params = macro.kwargs;
    if (args.pos.size() > params.size()) {
      return InvalidArgumentError("macro '" + macro.name + "' takes not more than " +
                                  std::to_string(params.size()) + " argument(s)");
    }
    Scope scope{{}, root_};
    std::vector<bool> bound(params.size(), false);
    for (size_t i = 0; i < args.pos.size(); ++i) {
      scope.vars[params[i].first] = std::move(args.pos[i]);
      bound[i] = true;
    }
    for (auto& [name, value] : args.kw) {
      size_t i = 0;
      while (i < params.size() && params[i].first != name) ++i;
      if (i == params.size()) {
        return InvalidArgumentError("macro '" + macro.name + "' takes no keyword argument '" +
                                    name + "'");
      }
      scope.vars[name] = std::move(value);
      bound[i] = true;
    }
    for (size_t i = 0; i < params.size(); ++i) {
      if (bound[i]) continue;
      if (params[i].second) {
        ASSIGN_OR_RETURN(scope.vars[params[i].first], Eval(*params[i].second, scope));
      } else {
        scope.vars[params[i].first] =
            Value::Undefined("parameter '" + params[i].first + "' was not provided");
      }
    }
    ASSIGN_OR_RETURN(std::string text, Capture(macro.body, scope));
    return Value::String(std::move(text));
  }

  std::string* out_ = nullptr;
  const Scope* root_ = nullptr;
  const Value* block_input_ = nullptr;
  Flow flow_ = Flow::kNormal;
  int nesting_ = 0;
  int call_depth_ = 0;
  bool located_ = false;
};

}  // namespace

Result<std::string> RenderTree(const Node& root, const Options& options, const Value& context) {
  Renderer renderer(options);
  return renderer.Run(root, context);
}

}  // namespace hubnode::runtime::jinja
