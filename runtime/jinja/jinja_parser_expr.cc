// The Jinja parser's expressions, from `x if c else y` down to literals. See class Parser in
// jinja_ast.h for the precedence table and the depth bounds.
#include "runtime/jinja/jinja_ast.h"

namespace hubnode::runtime::jinja {

bool Parser::IsTupleEnd(Names extra) const {
  const Token& t = Cur();
  if (t.type == TokenType::kVarEnd || t.type == TokenType::kBlockEnd || t.type == TokenType::kEof ||
      (t.type == TokenType::kOp && t.text == ")")) {
    return true;
  }
  return t.type == TokenType::kName && std::find(extra.begin(), extra.end(), t.text) != extra.end();
}

Result<NodePtr> Parser::ParseTuple(bool condexpr, bool explicit_parens, Names extra) {
  const Token& start = Cur();
  std::vector<NodePtr> args;
  bool is_tuple = false;
  while (true) {
    if (!args.empty()) RETURN_IF_ERROR(Expect(","));
    if (IsTupleEnd(extra)) break;
    ASSIGN_OR_RETURN(NodePtr e, ParseExpression(condexpr));
    args.push_back(std::move(e));
    if (IsOp(",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!args.empty()) return std::move(args[0]);
    if (!explicit_parens) return Error(Cur(), "Expected an expression, got " + Describe(Cur()));
  }
  NodePtr n = New(NodeType::kTuple, start);
  n->args = std::move(args);
  return Seal(std::move(n));
}

Result<NodePtr> Parser::ParseExpression(bool condexpr) {
  Nest nest(depth_);
  if (nest.too_deep()) return TooDeep();
  ASSIGN_OR_RETURN(NodePtr expr, ParseOr());
  while (condexpr && IsName("if")) {
    NodePtr n = New(NodeType::kCondExpr, Cur());
    Next();
    ASSIGN_OR_RETURN(n->a, ParseOr());
    n->b = std::move(expr);
    if (SkipName("else")) {
      ASSIGN_OR_RETURN(n->c, ParseExpression(true));
    }
    ASSIGN_OR_RETURN(expr, Seal(std::move(n)));
  }
  return expr;
}

Result<NodePtr> Parser::ParseOr() {
  ASSIGN_OR_RETURN(NodePtr left, ParseAnd());
  while (IsName("or")) {
    NodePtr n = New(NodeType::kOr, Cur());
    Next();
    n->a = std::move(left);
    ASSIGN_OR_RETURN(n->b, ParseAnd());
    ASSIGN_OR_RETURN(left, Seal(std::move(n)));
  }
  return left;
}

Result<NodePtr> Parser::ParseAnd() {
  ASSIGN_OR_RETURN(NodePtr left, ParseNot());
  while (IsName("and")) {
    NodePtr n = New(NodeType::kAnd, Cur());
    Next();
    n->a = std::move(left);
    ASSIGN_OR_RETURN(n->b, ParseNot());
    ASSIGN_OR_RETURN(left, Seal(std::move(n)));
  }
  return left;
}

Result<NodePtr> Parser::ParseNot() {
  if (!IsName("not")) return ParseCompare();
  Nest nest(depth_);
  if (nest.too_deep()) return TooDeep();
  NodePtr n = New(NodeType::kNot, Cur());
  Next();
  ASSIGN_OR_RETURN(n->a, ParseNot());
  return Seal(std::move(n));
}

Result<NodePtr> Parser::ParseCompare() {
  const Token& start = Cur();
  ASSIGN_OR_RETURN(NodePtr first, ParseMath1());
  NodePtr n = New(NodeType::kCompare, start);
  static constexpr std::pair<std::string_view, Op> kOps[] = {{"==", Op::kEq}, {"!=", Op::kNe},
                                                             {"<", Op::kLt},  {"<=", Op::kLe},
                                                             {">", Op::kGt},  {">=", Op::kGe}};
  while (true) {
    std::optional<Op> op;
    for (const auto& [text, o] : kOps) {
      if (IsOp(text)) op = o;
    }
    if (op) {
      Next();
    } else if (SkipName("in")) {
      op = Op::kIn;
    } else if (IsName("not") && Peek().type == TokenType::kName && Peek().text == "in") {
      Next();
      Next();
      op = Op::kNotIn;
    } else {
      break;
    }
    n->ops.push_back(*op);
    ASSIGN_OR_RETURN(NodePtr operand, ParseMath1());
    n->args.push_back(std::move(operand));
  }
  if (n->ops.empty()) return first;
  n->args.insert(n->args.begin(), std::move(first));
  return Seal(std::move(n));
}

Result<NodePtr> Parser::Binary(Op op, NodePtr left, NodePtr right, const Token& at) {
  NodePtr n = New(NodeType::kBinary, at);
  n->op = op;
  n->a = std::move(left);
  n->b = std::move(right);
  return Seal(std::move(n));
}

Result<NodePtr> Parser::ParseMath1() {
  ASSIGN_OR_RETURN(NodePtr left, ParseConcat());
  while (IsOp("+") || IsOp("-")) {
    const Token& at = Cur();
    Op op = at.text == "+" ? Op::kAdd : Op::kSub;
    Next();
    ASSIGN_OR_RETURN(NodePtr right, ParseConcat());
    ASSIGN_OR_RETURN(left, Binary(op, std::move(left), std::move(right), at));
  }
  return left;
}

Result<NodePtr> Parser::ParseConcat() {
  const Token& start = Cur();
  ASSIGN_OR_RETURN(NodePtr first, ParseMath2());
  if (!IsOp("~")) return first;
  NodePtr n = New(NodeType::kConcat, start);
  n->args.push_back(std::move(first));
  while (SkipOp("~")) {
    ASSIGN_OR_RETURN(NodePtr more, ParseMath2());
    n->args.push_back(std::move(more));
  }
  return Seal(std::move(n));
}

Result<NodePtr> Parser::ParseMath2() {
  ASSIGN_OR_RETURN(NodePtr left, ParsePow());
  while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
    const Token& at = Cur();
    Op op = at.text == "*"    ? Op::kMul
            : at.text == "/"  ? Op::kDiv
            : at.text == "//" ? Op::kFloorDiv
                              : Op::kMod;
    Next();
    ASSIGN_OR_RETURN(NodePtr right, ParsePow());
    ASSIGN_OR_RETURN(left, Binary(op, std::move(left), std::move(right), at));
  }
  return left;
}

Result<NodePtr> Parser::ParsePow() {
  ASSIGN_OR_RETURN(NodePtr left, ParseUnary(true));
  while (IsOp("**")) {
    const Token& at = Cur();
    Next();
    ASSIGN_OR_RETURN(NodePtr right, ParseUnary(true));
    ASSIGN_OR_RETURN(left, Binary(Op::kPow, std::move(left), std::move(right), at));
  }
  return left;
}

Result<NodePtr> Parser::ParseUnary(bool with_filter) {
  Nest nest(depth_);
  if (nest.too_deep()) return TooDeep();
  NodePtr node;
  if (IsOp("-") || IsOp("+")) {
    node = New(IsOp("-") ? NodeType::kNeg : NodeType::kPos, Cur());
    Next();
    ASSIGN_OR_RETURN(node->a, ParseUnary(false));
    ASSIGN_OR_RETURN(node, Seal(std::move(node)));
  } else {
    ASSIGN_OR_RETURN(node, ParsePrimary());
  }
  ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
  if (!with_filter) return node;
  while (true) {
    if (IsOp("|")) {
      ASSIGN_OR_RETURN(node, ParseFilter(std::move(node), false));
    } else if (IsName("is")) {
      ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
    } else if (IsOp("(")) {
      ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

Result<NodePtr> Parser::ParsePrimary() {
  const Token& tok = Cur();
  NodePtr n = New(NodeType::kConst, tok);
  switch (tok.type) {
    case TokenType::kName:
      if (tok.text == "true" || tok.text == "True") {
        n->constant = Value::Bool(true);
      } else if (tok.text == "false" || tok.text == "False") {
        n->constant = Value::Bool(false);
      } else if (tok.text == "none" || tok.text == "None") {
        n->constant = Value::None();
      } else {
        n->type = NodeType::kName;
        n->name = tok.text;
      }
      Next();
      return Seal(std::move(n));
    case TokenType::kString: {
      std::string s;
      while (Cur().type == TokenType::kString) {
        s += Cur().text;
        Next();
      }
      n->constant = Value::String(std::move(s));
      return Seal(std::move(n));
    }
    case TokenType::kInt:
      n->constant = Value::Int(tok.int_value);
      Next();
      return Seal(std::move(n));
    case TokenType::kFloat:
      n->constant = Value::Float(tok.float_value);
      Next();
      return Seal(std::move(n));
    default:
      break;
  }
  if (SkipOp("(")) {
    ASSIGN_OR_RETURN(NodePtr inner, ParseTuple(true, true, {}));
    RETURN_IF_ERROR(Expect(")"));
    return inner;
  }
  bool is_dict = IsOp("{");
  if (!is_dict && !IsOp("[")) return Error(tok, "unexpected " + Describe(tok));
  n->type = is_dict ? NodeType::kDict : NodeType::kList;
  Next();
  std::string_view close = is_dict ? "}" : "]";
  while (!IsOp(close)) {
    if (!n->args.empty()) {
      RETURN_IF_ERROR(Expect(","));
      if (IsOp(close)) break;
    }
    ASSIGN_OR_RETURN(NodePtr item, ParseExpression(true));
    n->args.push_back(std::move(item));
    if (is_dict) {
      RETURN_IF_ERROR(Expect(":"));
      ASSIGN_OR_RETURN(NodePtr value, ParseExpression(true));
      n->args.push_back(std::move(value));
    }
  }
  Next();
  return Seal(std::move(n));
}

Result<NodePtr> Parser::ParsePostfix(NodePtr node) {
  while (true) {
    const Token& at = Cur();
    if (SkipOp(".")) {
      if (Cur().type == TokenType::kName) {
        NodePtr n = New(NodeType::kGetAttr, at);
        n->name = Cur().text;
        n->a = std::move(node);
        Next();
        ASSIGN_OR_RETURN(node, Seal(std::move(n)));
      } else if (Cur().type == TokenType::kInt) {
        NodePtr n = New(NodeType::kGetItem, at);
        n->a = std::move(node);
        n->b = New(NodeType::kConst, Cur());
        n->b->constant = Value::Int(Cur().int_value);
        Next();
        ASSIGN_OR_RETURN(node, Seal(std::move(n)));
      } else {
        return Error(Cur(), "expected name or number after '.'");
      }
    } else if (SkipOp("[")) {
      ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node), at));
    } else if (IsOp("(")) {
      ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

// After `[`: an item, or a slice a[start:stop:step] with any part omitted.
Result<NodePtr> Parser::ParseSubscript(NodePtr object, const Token& at) {
  NodePtr parts[3];
  bool is_slice = false;
  if (!IsOp(":")) {
    ASSIGN_OR_RETURN(parts[0], ParseExpression(true));
  }
  if (SkipOp(":")) {
    is_slice = true;
    if (!IsOp(":") && !IsOp("]")) {
      ASSIGN_OR_RETURN(parts[1], ParseExpression(true));
    }
    if (SkipOp(":") && !IsOp("]")) {
      ASSIGN_OR_RETURN(parts[2], ParseExpression(true));
    }
  }
  if (!is_slice && !parts[0]) return Error(Cur(), "expected an expression in '[]'");
  RETURN_IF_ERROR(Expect("]"));
  NodePtr n = New(is_slice ? NodeType::kSlice : NodeType::kGetItem, at);
  n->a = std::move(object);
  if (is_slice) {
    for (auto& p : parts) n->args.push_back(std::move(p));
  } else {
    n->b = std::move(parts[0]);
  }
  return Seal(std::move(n));
}

// `(args, name=value)` into n->args and n->kwargs.
Status Parser::ParseArgs(Node& n) {
  RETURN_IF_ERROR(Expect("("));
  while (!IsOp(")")) {
    if (!n.args.empty() || !n.kwargs.empty()) {
      RETURN_IF_ERROR(Expect(","));
      if (IsOp(")")) break;
    }
    if (IsOp("*") || IsOp("**")) return Error(Cur(), "*args and **kwargs are not supported");
    if (Cur().type == TokenType::kName && Peek().type == TokenType::kOp && Peek().text == "=") {
      std::string name = Cur().text;
      Next();
      Next();
      ASSIGN_OR_RETURN(NodePtr value, ParseExpression(true));
      n.kwargs.emplace_back(std::move(name), std::move(value));
    } else {
      if (!n.kwargs.empty()) return Error(Cur(), "positional argument follows keyword argument");
      ASSIGN_OR_RETURN(NodePtr value, ParseExpression(true));
      n.args.push_back(std::move(value));
    }
  }
  Next();
  return OkStatus();
}

Result<NodePtr> Parser::ParseCall(NodePtr callee) {
  NodePtr n = New(NodeType::kCall, Cur());
  n->a = std::move(callee);
  RETURN_IF_ERROR(ParseArgs(*n));
  return Seal(std::move(n));
}

// `|name(args)` applied to `object` (null: a filter block's content).
Result<NodePtr> Parser::ParseFilter(NodePtr object, bool start_inline) {
  NodePtr n = New(NodeType::kFilter, Cur());
  if (!start_inline) Next();
  ASSIGN_OR_RETURN(n->name, ExpectName());
  n->a = std::move(object);
  if (IsOp("(")) RETURN_IF_ERROR(ParseArgs(*n));
  return Seal(std::move(n));
}

Result<NodePtr> Parser::ParseTest(NodePtr object) {
  NodePtr n = New(NodeType::kTest, Cur());
  Next();
  n->negated = SkipName("not");
  ASSIGN_OR_RETURN(n->name, ExpectName());
  n->a = std::move(object);
  const Token& t = Cur();
  if (IsOp("(")) {
    RETURN_IF_ERROR(ParseArgs(*n));
  } else if ((t.type == TokenType::kName || t.type == TokenType::kString ||
              t.type == TokenType::kInt || t.type == TokenType::kFloat || IsOp("[") || IsOp("{")) &&
             !IsName("else") && !IsName("or") && !IsName("and")) {
    if (IsName("is")) return Error(t, "You cannot chain multiple tests with is");
    ASSIGN_OR_RETURN(NodePtr arg, ParsePrimary());
    ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
    n->args.push_back(std::move(arg));
  }
  return Seal(std::move(n));
}

}  // namespace hubnode::runtime::jinja
