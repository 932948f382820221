// The Jinja parser's statements ({% for %}, {% if %}, {% set %}, {% macro %}, ...) and the
// Template entry points (Parse, Render); expressions are in jinja_parser_expr.cc. See class Parser
// in jinja_ast.h.
#include "runtime/jinja/jinja_ast.h"

namespace hubnode::runtime::jinja {

Result<std::shared_ptr<const Node>> Parser::Run() {
  auto root = std::make_shared<Node>();
  root->type = NodeType::kBody;
  root->line = 1;
  ASSIGN_OR_RETURN(root->body, ParseBody({}));
  if (Cur().type != TokenType::kEof) {
    return Error(Peek(), "Encountered unknown tag '" + Peek().text + "'");
  }
  return std::shared_ptr<const Node>(std::move(root));
}

// Statements up to a {% tag %} named in `end` (left unconsumed) or the end of the template.
Result<std::vector<NodePtr>> Parser::ParseBody(Names end) {
  std::vector<NodePtr> body;
  while (true) {
    const Token& tok = Cur();
    if (tok.type == TokenType::kEof) {
      if (end.size() == 0) return body;
      return Error(tok,
                   "unexpected end of template; looking for '" + std::string(*end.begin()) + "'");
    }
    if (tok.type == TokenType::kData) {
      NodePtr n = New(NodeType::kText, tok);
      n->name = tok.text;
      body.push_back(std::move(n));
      Next();
    } else if (tok.type == TokenType::kVarBegin) {
      NodePtr n = New(NodeType::kOutput, tok);
      Next();
      ASSIGN_OR_RETURN(n->a, ParseTuple(true, false, {}));
      if (Cur().type != TokenType::kVarEnd) {
        return Error(Cur(), "expected end of print statement, got " + Describe(Cur()));
      }
      Next();
      body.push_back(std::move(n));
    } else if (tok.type == TokenType::kBlockBegin) {
      const Token& name = Peek();
      if (name.type == TokenType::kName &&
          std::find(end.begin(), end.end(), name.text) != end.end()) {
        return body;
      }
      Next();
      ASSIGN_OR_RETURN(NodePtr n, ParseStatement());
      if (n) body.push_back(std::move(n));
    } else {
      return Error(tok, "unexpected " + Describe(tok));
    }
  }
}

// Consumes `{% name %}` where the block-begin token is current.
Status Parser::EndTag(std::string_view name) {
  Next();
  if (!SkipName(name)) return Error(Cur(), "expected '" + std::string(name) + "'");
  return ExpectBlockEnd();
}

Result<NodePtr> Parser::ParseStatement() {
  Nest nest(depth_);
  if (nest.too_deep()) return TooDeep();
  const Token& tok = Cur();
  if (tok.type != TokenType::kName) return Error(tok, "tag name expected");
  if (tok.text == "for") return ParseFor();
  if (tok.text == "if") return ParseIf();
  if (tok.text == "set") return ParseSet();
  if (tok.text == "macro") return ParseMacro();
  if (tok.text == "filter") return ParseFilterBlock();
  if (tok.text == "break" || tok.text == "continue") {
    if (loop_depth_ == 0) return Error(tok, "'" + tok.text + "' outside of a loop");
    NodePtr n = New(tok.text == "break" ? NodeType::kBreak : NodeType::kContinue, tok);
    Next();
    RETURN_IF_ERROR(ExpectBlockEnd());
    return n;
  }
  if (tok.text == "generation") {  // transformers' assistant-mask extension: renders its body.
    NodePtr n = New(NodeType::kBody, tok);
    Next();
    RETURN_IF_ERROR(ExpectBlockEnd());
    ASSIGN_OR_RETURN(n->body, ParseBody({"endgeneration"}));
    RETURN_IF_ERROR(EndTag("endgeneration"));
    return n;
  }
  return Error(tok, "Encountered unknown or unsupported tag '" + tok.text + "'");
}

Result<NodePtr> Parser::ParseFor() {
  NodePtr n = New(NodeType::kFor, Cur());
  Next();
  bool paren = SkipOp("(");
  do {
    ASSIGN_OR_RETURN(std::string target, ExpectName());
    n->targets.push_back(std::move(target));
  } while (SkipOp(","));
  if (paren) RETURN_IF_ERROR(Expect(")"));
  if (!SkipName("in")) return Error(Cur(), "expected 'in', got " + Describe(Cur()));
  ASSIGN_OR_RETURN(n->a, ParseTuple(false, false, {"if", "recursive"}));
  if (SkipName("if")) {
    ASSIGN_OR_RETURN(n->b, ParseExpression(true));
  }
  if (IsName("recursive")) return Error(Cur(), "recursive loops are not supported");
  RETURN_IF_ERROR(ExpectBlockEnd());
  ++loop_depth_;
  auto body = ParseBody({"endfor", "else"});
  --loop_depth_;
  if (!body.ok()) return body.status();
  n->body = std::move(body).value();
  if (Peek().text == "else") {
    Next();
    Next();
    RETURN_IF_ERROR(ExpectBlockEnd());
    ASSIGN_OR_RETURN(n->else_body, ParseBody({"endfor"}));
  }
  RETURN_IF_ERROR(EndTag("endfor"));
  return n;
}

Result<NodePtr> Parser::ParseIf() {
  NodePtr root = New(NodeType::kIf, Cur());
  Node* cur = root.get();
  Next();
  int saved_depth = depth_;
  while (true) {
    ASSIGN_OR_RETURN(cur->a, ParseTuple(false, false, {}));
    RETURN_IF_ERROR(ExpectBlockEnd());
    ASSIGN_OR_RETURN(cur->body, ParseBody({"elif", "else", "endif"}));
    if (Peek().text == "elif") {
      // Each elif nests one level deeper in the tree, so it counts toward the depth bound.
      if (++depth_ > kMaxParseDepth) {
        depth_ = saved_depth;
        return TooDeep();
      }
      Next();
      NodePtr next = New(NodeType::kIf, Cur());
      Next();
      Node* raw = next.get();
      cur->else_body.push_back(std::move(next));
      cur = raw;
      continue;
    }
    depth_ = saved_depth;
    if (Peek().text == "else") {
      Next();
      Next();
      RETURN_IF_ERROR(ExpectBlockEnd());
      ASSIGN_OR_RETURN(cur->else_body, ParseBody({"endif"}));
    }
    RETURN_IF_ERROR(EndTag("endif"));
    return root;
  }
}

Result<NodePtr> Parser::ParseSet() {
  NodePtr n = New(NodeType::kSet, Cur());
  Next();
  ASSIGN_OR_RETURN(std::string first, ExpectName());
  n->targets.push_back(std::move(first));
  if (SkipOp(".")) {
    ASSIGN_OR_RETURN(n->attr, ExpectName());
  } else {
    while (SkipOp(",")) {
      ASSIGN_OR_RETURN(std::string more, ExpectName());
      n->targets.push_back(std::move(more));
    }
  }
  if (SkipOp("=")) {
    ASSIGN_OR_RETURN(n->a, ParseTuple(true, false, {}));
    RETURN_IF_ERROR(ExpectBlockEnd());
    return n;
  }
  if (n->targets.size() != 1) return Error(Cur(), "expected '='");
  n->type = NodeType::kSetBlock;
  while (IsOp("|")) {
    ASSIGN_OR_RETURN(n->b, ParseFilter(std::move(n->b), false));
  }
  RETURN_IF_ERROR(ExpectBlockEnd());
  ASSIGN_OR_RETURN(n->body, ParseBody({"endset"}));
  RETURN_IF_ERROR(EndTag("endset"));
  return n;
}

Result<NodePtr> Parser::ParseMacro() {
  NodePtr n = New(NodeType::kMacro, Cur());
  Next();
  ASSIGN_OR_RETURN(n->name, ExpectName());
  RETURN_IF_ERROR(Expect("("));
  while (!IsOp(")")) {
    if (!n->kwargs.empty()) RETURN_IF_ERROR(Expect(","));
    ASSIGN_OR_RETURN(std::string param, ExpectName());
    NodePtr def;
    if (SkipOp("=")) {
      ASSIGN_OR_RETURN(def, ParseExpression(true));
    } else if (!n->kwargs.empty() && n->kwargs.back().second) {
      return Error(Cur(), "non-default argument follows default argument");
    }
    n->kwargs.emplace_back(std::move(param), std::move(def));
  }
  Next();
  RETURN_IF_ERROR(ExpectBlockEnd());
  int saved_loops = loop_depth_;
  loop_depth_ = 0;
  auto body = ParseBody({"endmacro"});
  loop_depth_ = saved_loops;
  if (!body.ok()) return body.status();
  n->body = std::move(body).value();
  RETURN_IF_ERROR(EndTag("endmacro"));
  return n;
}

Result<NodePtr> Parser::ParseFilterBlock() {
  NodePtr n = New(NodeType::kFilterBlock, Cur());
  Next();
  ASSIGN_OR_RETURN(n->b, ParseFilter(nullptr, true));
  while (IsOp("|")) {
    ASSIGN_OR_RETURN(n->b, ParseFilter(std::move(n->b), false));
  }
  RETURN_IF_ERROR(ExpectBlockEnd());
  ASSIGN_OR_RETURN(n->body, ParseBody({"endfilter"}));
  RETURN_IF_ERROR(EndTag("endfilter"));
  return n;
}

Result<std::shared_ptr<const Node>> ParseTokens(const std::vector<Token>& tokens) {
  if (tokens.empty() || tokens.back().type != TokenType::kEof) {
    return InternalError("token stream does not end in EOF");
  }
  return Parser(tokens).Run();
}

Result<Template> Template::Parse(std::string_view source, const Options& options) {
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Lex(source, options));
  ASSIGN_OR_RETURN(std::shared_ptr<const Node> root, ParseTokens(tokens));
  return Template(std::move(root), options);
}

namespace {

template <typename Json>
Result<std::string> RenderJson(const Node& root, const Options& options, const Json& context) {
  if (!context.is_object()) return InvalidArgumentError("template context must be a JSON object");
  ASSIGN_OR_RETURN(Value ctx, FromJson(context));
  return RenderTree(root, options, ctx);
}

}  // namespace

Result<std::string> Template::Render(const nlohmann::ordered_json& context) const {
  return RenderJson(*root_, options_, context);
}

Result<std::string> Template::Render(const nlohmann::json& context) const {
  return RenderJson(*root_, options_, context);
}

}  // namespace hubnode::runtime::jinja
