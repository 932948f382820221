// Unit tests of the Jinja interpreter (runtime/jinja.h). The byte-exact comparison with the real
// jinja2 over whole chat templates is tests/runtime/jinja/jinja_golden.py; these tests pin each
// feature, the error contract and the resource bounds.
#include "runtime/jinja/jinja.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace hubnode::runtime::jinja {
namespace {

using nlohmann::ordered_json;

// Renders `source` with `context`; a failure renders as "ERROR <code>: <message>".
std::string R(std::string_view source, const ordered_json& context = ordered_json::object(),
              const Options& options = {}) {
  auto t = Template::Parse(source, options);
  if (!t.ok()) return "ERROR " + t.status().ToString();
  auto out = t->Render(context);
  if (!out.ok()) return "ERROR " + out.status().ToString();
  return *out;
}

StatusCode ParseCode(std::string_view source) {
  auto t = Template::Parse(source);
  return t.ok() ? StatusCode::kOk : t.status().code();
}

StatusCode RenderCode(std::string_view source, const ordered_json& context = ordered_json::object(),
                      const Options& options = {}) {
  auto t = Template::Parse(source, options);
  if (!t.ok()) return t.status().code();
  auto out = t->Render(context);
  return out.ok() ? StatusCode::kOk : out.status().code();
}

TEST(JinjaTest, OutputsLiteralsLikePython) {
  EXPECT_EQ(R("{{ 'a' }}{{ \"b\" }}{{ 1 }}{{ 1.5 }}{{ 2.0 }}{{ true }}{{ None }}"),
            "ab11.52.0TrueNone");
  EXPECT_EQ(R("{{ [1, 'x', none] }}{{ {'k': (1,)} }}{{ () }}"), "[1, 'x', None]{'k': (1,)}()");
  EXPECT_EQ(R("{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }}"),
            "1e+16 1000000000000000.0 0.0001 1e-05 0.3333333333333333");
  EXPECT_EQ(R("{{ 'tab\\there\\n' }}{{ '\\u00e9\\x41\\101' }}"), "tab\there\néAA");
  EXPECT_EQ(R("{{ 'it''s' }}{{ \"'\" }}"), "its'");
}

TEST(JinjaTest, Arithmetic) {
  EXPECT_EQ(R("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 8 }} {{ -2 ** 2 }}"),
            "3 -4 2 3.5 256 4");
  EXPECT_EQ(R("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'ab' * 2 }} {{ [1] + [2] }} {{ 1 + 0.5 }}"),
            "7 9 abab [1, 2] 1.5");
  EXPECT_EQ(R("{{ 'a' ~ 1 ~ none ~ x }}"), "a1None");
  EXPECT_EQ(RenderCode("{{ 1 / 0 }}"), StatusCode::kInvalidArgument);
  EXPECT_EQ(RenderCode("{{ 'a' + 1 }}"), StatusCode::kInvalidArgument);
  EXPECT_EQ(RenderCode("{{ 9223372036854775807 + 1 }}"), StatusCode::kInvalidArgument);
}

TEST(JinjaTest, ComparisonsAndLogic) {
  EXPECT_EQ(R("{{ 1 < 2 < 3 }}{{ 1 == 1.0 }}{{ 'a' != 'b' }}{{ [1,2] == [1,2] }}{{ (1,) == [1] }}"),
            "TrueTrueTrueTrueFalse");
  EXPECT_EQ(R("{{ 'b' in 'abc' }}{{ 3 not in [1, 2] }}{{ 'k' in {'k': 1} }}{{ 1 in x }}"),
            "TrueTrueTrueFalse");
  EXPECT_EQ(R("{{ 0 or 'x' }}{{ 1 and 'y' }}{{ not 0 }}{{ 'a' if 0 else 'b' }}[{{ 'a' if 0 }}]"),
            "xyTrueb[]");
  EXPECT_EQ(RenderCode("{{ 'a' < 1 }}"), StatusCode::kInvalidArgument);
}

TEST(JinjaTest, TrimAndLstripBlocks) {
  EXPECT_EQ(R("a\n  {% if true %}\n  b\n  {% endif %}\nc"), "a\n  b\nc");
  EXPECT_EQ(R("a {%- if true -%} b {%- endif -%} c"), "abc");
  EXPECT_EQ(R("  {{ 'v' }}  \n"), "  v  ");  // one trailing newline dropped; {{ }} not stripped
  EXPECT_EQ(R("x\n  {%+ if true %}y{% endif +%}\nz"), "x\n  y\nz");
  EXPECT_EQ(R("a\r\nb\rc"), "a\nb\nc");
  EXPECT_EQ(R("  {# note #}\nq"), "q");
  Options plain;
  plain.trim_blocks = false;
  plain.lstrip_blocks = false;
  EXPECT_EQ(R("a\n  {% if true %}\nb{% endif %}", ordered_json::object(), plain), "a\n  \nb");
}

TEST(JinjaTest, ForLoopVariables) {
  EXPECT_EQ(R("{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
              "{{ loop.revindex0 }}{{ loop.first|int }}{{ loop.last|int }}{{ loop.length }};"
              "{% endfor %}"),
            "1032103;2121003;3210013;");
  EXPECT_EQ(
      R("{% for x in [1,2,3] %}{{ loop.previtem|default('-') }}{{ loop.nextitem|default('-') }}"
        "{{ loop.cycle('a','b') }} {% endfor %}"),
      "-2a 13b 2-a ");
  EXPECT_EQ(R("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(R("{% for x in [1,2,3,4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}"),
            "2/2 4/2 ");
  EXPECT_EQ(R("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}{{ v }}{% endfor %}"), "a1b2");
  EXPECT_EQ(R("{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}"), "ba");
  EXPECT_EQ(R("{% for i in range(9) %}{% if i == 1 %}{% continue %}{% endif %}"
              "{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
            "023");
}

TEST(JinjaTest, ScopingFollowsJinja) {
  EXPECT_EQ(R("{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = x + 10 %}{{ x }},{% endfor "
              "%}{{ x }}"),
            "111,111,1");
  EXPECT_EQ(R("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}"), "2");
  EXPECT_EQ(R("{% set ns = namespace(n=0) %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}"
              "{% endfor %}{{ ns.n }}"),
            "6");
  EXPECT_EQ(R("{% set a, b = 1, 2 %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(R("{% set s %}  block {{ 1 }}{% endset %}[{{ s }}]"), "[  block 1]");
  EXPECT_EQ(RenderCode("{% set d = {} %}{% set d.x = 1 %}"), StatusCode::kInvalidArgument);
}

TEST(JinjaTest, Macros) {
  EXPECT_EQ(R("{% macro m(a, b='B') %}<{{ a }}{{ b }}>{% endmacro %}{{ m(1) }}{{ m(1, 2) }}"
              "{{ m(b=3, a=4) }}"),
            "<1B><12><43>");
  EXPECT_EQ(R("{% macro m() %}{{ g }}{% endmacro %}{% set g = 5 %}{{ m() }}"), "5");
  EXPECT_EQ(RenderCode("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"),
            StatusCode::kInvalidArgument);
}

TEST(JinjaTest, SubscriptsAndSlices) {
  EXPECT_EQ(R("{{ m[0].role }}{{ m[-1]['role'] }}{{ m[5] is defined }}",
              {{"m", {{{"role", "a"}}, {{"role", "b"}}}}}),
            "abFalse");
  EXPECT_EQ(R("{{ [1,2,3,4][1:] }}{{ [1,2,3][::-1] }}{{ [1,2,3,4][::2] }}{{ 'héllo'[1:3] }}"
              "{{ 'abc'[-1] }}"),
            "[2, 3, 4][3, 2, 1][1, 3]élc");
  EXPECT_EQ(R("{{ d.items }}", {{"d", {{"items", 1}}}}).substr(0, 9), "<function");
  EXPECT_EQ(R("{{ d['items'] }}", {{"d", {{"items", 1}}}}), "1");
}

TEST(JinjaTest, StringMethods) {
  EXPECT_EQ(R("{{ ' x '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nq\\n'.lstrip('\\n') }}|"
              "{{ 'q\\n\\n'.rstrip() }}"),
            "x|a|q\n|q");
  EXPECT_EQ(R("{{ 'a b  c'.split() }}{{ 'a,b,c'.split(',', 1) }}{{ "
              "'a</think>b'.split('</think>')[-1] }}"),
            "['a', 'b', 'c']['a', 'b,c']b");
  EXPECT_EQ(R("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'aB'.upper() }}"
              "{{ 'aB'.lower() }}{{ 'hi there'.title() }}{{ 'hI'.capitalize() }}"),
            "TrueTrueABabHi ThereHi");
  EXPECT_EQ(R("{{ 'aXbX'.replace('X', '-') }}{{ 'abcabc'.find('c') }}{{ 'aaa'.count('a') }}"
              "{{ '-'.join(['a', 'b']) }}{{ '{} {name}'.format(1, name='n') }}"),
            "a-b-23a-b1 n");
}

TEST(JinjaTest, DictMethods) {
  ordered_json ctx = {{"d", {{"b", 1}, {"a", 2}}}};
  EXPECT_EQ(R("{{ d.keys()|list }}{{ d.values()|list }}{{ d.get('a') }}{{ d.get('z') }}"
              "{{ d.get('z', 0) }}",
              ctx),
            "['b', 'a'][1, 2]2None0");
  EXPECT_EQ(R("{{ d.items()|list }}", ctx), "[('b', 1), ('a', 2)]");
}

TEST(JinjaTest, Filters) {
  ordered_json ctx = {
      {"m",
       {{{"role", "user"}, {"n", 2}}, {{"role", "bot"}, {"n", 1}}, {{"role", "User"}, {"n", 3}}}}};
  EXPECT_EQ(R("{{ m|map(attribute='role')|join(',') }}|{{ m|selectattr('role', 'equalto', "
              "'bot')|list|length }}"
              "|{{ m|rejectattr('n', 'gt', 1)|map(attribute='role')|first }}"
              "|{{ m|sort(attribute='n')|map(attribute='n')|list }}"
              "|{{ m|map(attribute='role')|unique|list }}|{{ m|sum(attribute='n') }}",
              ctx),
            "user,bot,User|1|bot|[1, 2, 3]|['user', 'bot']|6");
  EXPECT_EQ(R("{{ '  t  '|trim }}|{{ 'ab'|upper }}|{{ [1,2]|length }}|{{ 'héllo'|count }}|"
              "{{ [1,2]|first }}{{ [1,2]|last }}|{{ x|default('d') }}|{{ ''|d('e', true) }}|"
              "{{ 1|string }}{{ '7'|int + 1 }}{{ 'x'|int }}{{ '2.5'|float }}"),
            "t|AB|2|5|12|d|e|1802.5");
  EXPECT_EQ(R("{{ 'a'|list }}{{ [3,1,2]|sort(reverse=true) }}{{ ['b','A','a']|sort }}"
              "{{ [1,2]|reverse|list }}{{ 'ab'|reverse }}{{ [1,2,3]|max }}{{ [1,2,3]|min }}"),
            "['a'][3, 2, 1]['A', 'a', 'b'][2, 1]ba31");
  EXPECT_EQ(R("{{ {'b':1,'a':2}|dictsort }}{{ {'a':1}|items|list }}"),
            "[('a', 2), ('b', 1)][('a', 1)]");
  EXPECT_EQ(
      R("{{ 'a\\nb'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'x y'|replace(' ', '_') }}"),
      "a\n  b|  a\n  b|x_y");
  EXPECT_EQ(R("{{ 2.5|round }}{{ 3.14159|round(2) }}{{ -3|abs }}{{ 'hello world'|title }}"
              "{{ 'hELLO'|capitalize }}{{ '<&>'|e }}{{ [1,2,3]|batch(2)|list }}"),
            "2.03.143Hello WorldHello&lt;&amp;&gt;[[1, 2], [3]]");
  EXPECT_EQ(R("{{ ['a', 'b']|map('upper')|list }}{{ [0, 1, 2]|select|list }}{{ [1, "
              "2]|reject('odd')|list }}"),
            "['A', 'B'][1, 2][2]");
  EXPECT_EQ(RenderCode("{{ 1|nosuchfilter }}"), StatusCode::kInvalidArgument);
}

TEST(JinjaTest, ToJsonIsTransformersJsonDumps) {
  ordered_json ctx = {
      {"v", {{"z", "é<>&'"}, {"a", {1, 2.5, nullptr, true}}, {"e", ordered_json::object()}}}};
  EXPECT_EQ(R("{{ v|tojson }}", ctx), R"({"z": "é<>&'", "a": [1, 2.5, null, true], "e": {}})");
  EXPECT_EQ(R("{{ v.a|tojson(indent=2) }}", ctx), "[\n  1,\n  2.5,\n  null,\n  true\n]");
  EXPECT_EQ(R("{{ 'é\\n'|tojson(ensure_ascii=true) }}{{ v|tojson(sort_keys=true) }}", ctx),
            R"("\u00e9\n"{"a": [1, 2.5, null, true], "e": {}, "z": "é<>&'"})");
  EXPECT_EQ(R("{{ [1.0, 1e20]|tojson }}{{ (1, 2)|tojson }}"), "[1.0, 1e+20][1, 2]");
  EXPECT_EQ(RenderCode("{{ x|tojson }}"), StatusCode::kInvalidArgument);
  // nlohmann::json sorts object keys; the json overload renders in that order.
  nlohmann::json sorted = {{"v", {{"z", 1}, {"a", 2}}}};
  auto t = Template::Parse("{{ v|tojson }}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->Render(sorted), R"({"a": 2, "z": 1})");
}

TEST(JinjaTest, Tests) {
  EXPECT_EQ(R("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}"
              "{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is integer }}{{ {} is mapping }}"
              "{{ [] is iterable }}{{ 'a' is sequence }}{{ true is boolean }}{{ false is false }}"),
            "FalseTrueTrueTrueTrueTrueFalseTrueTrueTrueTrueTrue");
  EXPECT_EQ(R("{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 'a' is equalto 'a' }}"
              "{{ 1 is not none }}{{ 2 is gt 1 }}{{ 1 is in [1] }}"),
            "TrueFalseTrueTrueTrueTrueTrue");
}

TEST(JinjaTest, UndefinedBehavesLikeJinja2) {
  EXPECT_EQ(
      R("[{{ x }}]{{ x|length }}{% for i in x %}no{% endfor %}{% if not x %}falsy{% endif %}"),
      "[]0falsy");
  auto t = Template::Parse("{{ x.y }}");
  ASSERT_TRUE(t.ok());
  auto out = t->Render(ordered_json::object());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("'x' is undefined"), std::string::npos);
  EXPECT_EQ(RenderCode("{{ x['k'] }}"), StatusCode::kInvalidArgument);
  EXPECT_EQ(RenderCode("{{ x + 1 }}"), StatusCode::kInvalidArgument);
  EXPECT_EQ(RenderCode("{{ x() }}"), StatusCode::kInvalidArgument);
  EXPECT_EQ(R("{{ d.missing is defined }}[{{ d.missing }}]", {{"d", ordered_json::object()}}),
            "False[]");
}

TEST(JinjaTest, SandboxRefusesMutation) {
  EXPECT_EQ(RenderCode("{% set l = [1] %}{{ l.append(2) }}"), StatusCode::kInvalidArgument);
  EXPECT_EQ(R("{{ [].append is defined }}"), "False");
  EXPECT_EQ(RenderCode("{{ {}.update({}) }}"), StatusCode::kInvalidArgument);
}

TEST(JinjaTest, RaiseExceptionCarriesTheMessage) {
  auto t = Template::Parse("a{{ raise_exception('roles must alternate') }}");
  ASSERT_TRUE(t.ok());
  auto out = t->Render(ordered_json::object());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "roles must alternate");
}

TEST(JinjaTest, StrftimeNowReadsTheInjectedClock) {
  Options options;
  options.now = [] {
    return std::chrono::system_clock::time_point(std::chrono::seconds(1721822400));
  };
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(R("{{ strftime_now('%d %b %Y') }}", ordered_json::object(), options), "24 Jul 2024");
}

TEST(JinjaTest, RawGenerationAndFilterBlocks) {
  EXPECT_EQ(R("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
  EXPECT_EQ(R("{% generation %}g{{ 1 }}{% endgeneration %}"), "g1");
  EXPECT_EQ(R("{% filter upper %}abc{% endfilter %}"), "ABC");
  EXPECT_EQ(R("{% set x | trim %}  pad  {% endset %}[{{ x }}]"), "[pad]");
}

TEST(JinjaTest, ContextKeysBecomeVariables) {
  ordered_json ctx = {{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                      {"add_generation_prompt", true},
                      {"bos_token", "<s>"},
                      {"enable_thinking", false}};
  EXPECT_EQ(R("{{ bos_token }}{{ messages[0].content }}{{ add_generation_prompt }}"
              "{{ enable_thinking is false }}",
              ctx),
            "<s>hiTrueTrue");
  EXPECT_EQ(RenderCode("x", ordered_json::array()), StatusCode::kInvalidArgument);
}

TEST(JinjaTest, MalformedTemplatesAreInvalidArgument) {
  const char* cases[] = {
      "{{ x ",                                   // unterminated variable
      "{% if x %}",                              // missing endif
      "{% for x in y %}",                        // missing endfor
      "{% endif %}",                             // stray end tag
      "{% if x %}{% endfor %}",                  // mismatched end tag
      "{{ 'abc }}",                              // unterminated string
      "{# comment",                              // unterminated comment
      "{% raw %}abc",                            // unterminated raw
      "{{ (1 }}",                                // unbalanced paren
      "{{ 1 + }}",                               // missing operand
      "{% set %}",                               // set without target
      "{% for in y %}{% endfor %}",              // for without target
      "{% unknowntag %}",                        // unknown tag
      "{% include 'x' %}",                       // unsupported tag
      "{{ x | }}",                               // filter without name
      "{{ a.1x }}",                              // bad attribute
      "{% macro m(a=1, b) %}{% endmacro %}",     // non-default after default
      "{% break %}",                             // break outside loop
      "{{ 08 }}",                                // leading zeros
      "{{ 99999999999999999999 }}",              // integer literal too large
      "{{ x $ y }}",                             // bad character
      "{{ f(a=1, 2) }}",                         // positional after keyword
      "{% for x in y recursive %}{% endfor %}",  // recursive loops unsupported
      "\xff\xfe",                                // not UTF-8
  };
  for (const char* source : cases) {
    EXPECT_EQ(ParseCode(source), StatusCode::kInvalidArgument) << source;
  }
  auto t = Template::Parse("line1\n{{ x + }}");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message().substr(0, 2), "2:");
}

TEST(JinjaTest, ParserDepthIsBounded) {
  EXPECT_EQ(ParseCode("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(ParseCode("{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}"),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(ParseCode("{{ " + std::string(200, '(') + "1" + std::string(200, ')') + " }}"),
            StatusCode::kResourceExhausted);  // each paren costs several parser levels
  std::string chain = "{{ 1";
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  EXPECT_EQ(ParseCode(chain + " }}"), StatusCode::kResourceExhausted);
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if true %}";
  EXPECT_EQ(ParseCode(ifs), StatusCode::kResourceExhausted);
  std::string elifs = "{% if false %}";
  for (int i = 0; i < 1000; ++i) elifs += "{% elif false %}";
  EXPECT_EQ(ParseCode(elifs + "{% endif %}"), StatusCode::kResourceExhausted);
  EXPECT_EQ(ParseCode("{{ " + std::string(3000, '-') + "1 }}"), StatusCode::kResourceExhausted);
  EXPECT_EQ(ParseCode(std::string((1 << 20) + 1, 'a')), StatusCode::kResourceExhausted);
}

TEST(JinjaTest, RenderingIsBounded) {
  Options small;
  small.max_output_bytes = 1000;
  EXPECT_EQ(RenderCode("{% for i in range(2000) %}x{% endfor %}", ordered_json::object(), small),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(RenderCode("{{ 'x' * 100000000000 }}"), StatusCode::kResourceExhausted);
  EXPECT_EQ(RenderCode("{{ range(1000000000)|list }}"), StatusCode::kResourceExhausted);
  Options loops;
  loops.max_loop_iterations = 100;
  EXPECT_EQ(RenderCode("{% for i in range(50) %}{% for j in range(50) %}{% endfor %}{% endfor %}",
                       ordered_json::object(), loops),
            StatusCode::kResourceExhausted);
  Options steps;
  steps.max_steps = 1000;
  EXPECT_EQ(RenderCode("{% for i in range(10000) %}{% endfor %}", ordered_json::object(), steps),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(RenderCode("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
            StatusCode::kResourceExhausted);
  // Doubling a string through a namespace: bounded by the string and work limits.
  EXPECT_EQ(RenderCode("{% set ns = namespace(s='x') %}{% for i in range(100) %}"
                       "{% set ns.s = ns.s ~ ns.s %}{% endfor %}"),
            StatusCode::kResourceExhausted);
  // Nesting a list a level per iteration: bounded by the value depth.
  EXPECT_EQ(RenderCode("{% set ns = namespace(l=[]) %}{% for i in range(10000) %}"
                       "{% set ns.l = [ns.l] %}{% endfor %}"),
            StatusCode::kResourceExhausted);
}

TEST(JinjaTest, CyclicNamespacePrintsWithoutRecursingForever) {
  std::string out = R("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns }}");
  EXPECT_EQ(out.substr(0, 19), "<Namespace {'self':");
  EXPECT_EQ(RenderCode("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns|tojson }}"),
            StatusCode::kInvalidArgument);
}

TEST(JinjaTest, DeepJsonContextIsRefused) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  ordered_json nested = ordered_json::parse("{\"x\": " + deep + "}", nullptr, false);
  ASSERT_FALSE(nested.is_discarded());
  EXPECT_EQ(RenderCode("{{ 1 }}", nested), StatusCode::kResourceExhausted);
}

TEST(JinjaTest, TemplateIsReusableAndCopyable) {
  auto t = Template::Parse("{{ n }}");
  ASSERT_TRUE(t.ok());
  Template copy = *t;
  EXPECT_EQ(*t->Render(ordered_json{{"n", 1}}), "1");
  EXPECT_EQ(*copy.Render(ordered_json{{"n", 2}}), "2");
}

}  // namespace
}  // namespace hubnode::runtime::jinja
