#!/usr/bin/env python3
"""Golden comparison of hubnode's Jinja interpreter against the real jinja2.

Renders every template x context pair with jinja2 configured as transformers renders chat
templates (ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True), the
loopcontrols extension, a {% generation %} tag, and transformers' tojson, raise_exception and
strftime_now), then with the C++ driver, and compares the outputs byte for byte. A pair where
jinja2 raises passes when the driver fails too; for raise_exception the messages must match.

Usage: jinja_golden.py JINJA_MAIN [SOURCE_DIR]
The templates are written for this test: they reproduce the constructs of the real families'
templates (Qwen2.5 tools, Qwen3 thinking, Llama 3.1 tools and dates, Mistral alternation,
DeepSeek flags, Gemma role mapping) without copying them. The testmodel's three templates are
read from testmodel/tokenizer.cc.
"""
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXED_TIME = 1721822400  # 2024-07-24T12:00:00Z; the driver gets the same clock.

# ChatML with tools in the system turn, tool calls whose arguments may be dicts (tojson) or
# strings, and consecutive tool results grouped into one user turn (Qwen2.5 style).
QWEN25_TOOLS = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nFunction signatures inside <tools></tools>:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nReturn a JSON object per call:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {%- if tool_call.arguments is string %}
                {{- tool_call.arguments }}
            {%- else %}
                {{- tool_call.arguments | tojson }}
            {%- endif %}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# Thinking models: a reverse scan for the last real user query, <think> splitting of earlier
# assistant turns, reasoning_content, and enable_thinking (Qwen3 style).
QWEN3_THINK = r"""{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' ~ tool_call.name ~ '", "arguments": ' }}
                {%- if tool_call.arguments is string %}{{- tool_call.arguments }}{%- else %}{{- tool_call.arguments | tojson }}{%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' ~ content ~ '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}
"""

# Header-style turns with a dated system block, tools as indented JSON in the first user turn,
# and tool calls rendered as JSON (Llama 3.1 style).
LLAMA31_TOOLS = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- if tools_in_user_message and not tools is none %}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
    {%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Respond with a JSON function call.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable and message.content is not string %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

# [INST] turns with strict alternation, the system prompt folded into the last user turn, tools
# before the last user turn and 9-character tool call ids (Mistral v3/v7 style).
MISTRAL_TOOLS = r"""{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}
{%- for message in loop_messages | rejectattr("role", "equalto", "tool") | rejectattr("role", "equalto", "tool_results") | selectattr("tool_calls", "undefined") %}
    {%- if (message["role"] == "user") != (loop.index0 % 2 == 0) %}
        {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif %}
{%- endfor %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
        {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

# Flags carried across turns in a namespace, tool outputs chained, and the reasoning stripped
# from earlier assistant turns (DeepSeek style).
DEEPSEEK_FLAGS = r"""{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}
{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}
{%- for message in messages %}
    {%- if message['role'] == 'system' %}
        {%- if ns.is_first_sp %}
            {% set ns.system_prompt = ns.system_prompt + message['content'] %}
            {% set ns.is_first_sp = false %}
        {%- else %}
            {% set ns.system_prompt = ns.system_prompt + '\n\n' + message['content'] %}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{{ bos_token }}{{ ns.system_prompt }}
{%- for message in messages %}
    {%- if message['role'] == 'user' %}
        {%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}
    {%- endif %}
    {%- if message['role'] == 'assistant' and 'tool_calls' in message %}
        {%- set ns.is_tool = false -%}
        {%- for tool in message['tool_calls'] %}
            {%- if not ns.is_first %}
                {{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments']|tojson + '\n' + '```' + '<｜tool▁call▁end｜>'}}
                {%- set ns.is_first = true -%}
            {%- else %}
                {{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments']|tojson + '\n' + '```' + '<｜tool▁call▁end｜>'}}
            {%- endif %}
        {%- endfor %}
        {{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}
    {%- endif %}
    {%- if message['role'] == 'assistant' and 'tool_calls' not in message %}
        {%- if ns.is_tool %}
            {{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}
            {%- set ns.is_tool = false -%}
        {%- else %}
            {% set content = message['content'] %}
            {% if '</think>' in content %}
                {% set content = content.split('</think>')[-1] %}
            {% endif %}
            {{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}
        {%- endif %}
    {%- endif %}
    {%- if message['role'] == 'tool' %}
        {%- set ns.is_tool = true -%}
        {%- if ns.is_output_first %}
            {{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}
            {%- set ns.is_output_first = false %}
        {%- else %}
            {{'\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}
        {%- endif %}
    {%- endif %}
{%- endfor -%}
{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}
{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\n'}}{% endif %}
"""

# Role mapping (assistant -> model), a system prompt merged into the first user turn, and
# alternation enforced with raise_exception (Gemma style).
GEMMA_ROLES = r"""{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- set role = "model" if message['role'] == 'assistant' else message['role'] -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

# Everything else the interpreter supports, in one template.
FEATURES = r"""{# a comment #}
{% macro turn(role, text, sep=': ') -%}
[{{ role|upper }}{{ sep }}{{ text }}]
{%- endmacro %}
{% set header %}
  Block set with {{ messages|length }} messages
{% endset %}
{{ header|trim }}|{{ header|length }}
{% for m in messages if m.role != 'system' %}
  {{ loop.index }}/{{ loop.length }} {{ loop.revindex0 }} {{ loop.first }} {{ loop.last }} {{ turn(m.role, m.content|default('none')|string) }}
  {%- if loop.previtem is defined %} prev={{ loop.previtem.role }}{% endif %}
  {%- if loop.nextitem is defined %} next={{ loop.nextitem.role }}{% endif %} {{ loop.cycle('odd', 'even') }}
{% else %}
  no messages
{% endfor %}
roles: {{ messages|map(attribute='role')|join(', ') }}; unique {{ messages|map(attribute='role')|unique|list }}
sorted: {{ messages|map(attribute='role')|sort(reverse=true)|join(',') }} {{ messages|selectattr('role', 'equalto', 'user')|list|length }}
{% set ns = namespace(total=0, names=[]) %}
{% for m in messages %}{% set ns.total = ns.total + (m.content|string|length) %}{% set ns.names = ns.names + [m.role[:1]] %}{% endfor %}
total={{ ns.total }} names={{ ns.names }} {{ ns.names|tojson }} {{ ns.names[::-1]|join }} {{ ns.names[1:]|last|default('-') }}
{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 10 / 4 }} {{ 1e3 }} {{ 0.1 + 0.2 }} {{ 3|float }} {{ '42'|int + 1 }} {{ 2.675|round(2) }} {{ 2.5|round }} {{ -3|abs }}
{{ 'a' ~ 1 ~ none ~ true }} {{ [1, 'two', none, false, 1.5, (3,)] }} {{ {'k': 'v', 'n': [1, {}]} }} {{ ('x',) + ('y',) }}
{{ "  padded\t"|trim }}|{{ 'x-y-z'.split('-', 1) }}|{{ 'a  b\n c'.split() }}|{{ 'abc'.upper().lower() }}|{{ 'hello world'.title() }}|{{ 'hELLO'|capitalize }}
{{ 'aXbXc'.replace('X', '-') }} {{ 'abcabc'.find('c') }} {{ 'abcabc'.count('bc') }} {{ ','.join(['p', 'q']) }} {{ 'Héllo wörld'[1:4] }} {{ 'Héllo'|length }}
{{ 'abc' in 'xabcx' }} {{ 3 not in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ [1, 2] == [1, 2] }} {{ none is none }} {{ 5 is odd }} {{ 6 is divisibleby 3 }}
{{ undefined_var is defined }} {{ undefined_var|default('dflt') }} [{{ undefined_var }}] {{ messages[0].nokey is defined }} {{ ''|default('empty', true) }} {{ x if false }}
{{ {'b': 2, 'a': 1}|dictsort }} {{ {'b': 2, 'a': 1}.items()|list }} {{ {'b': 2}.get('b') }} {{ {'b': 2}.get('z', 'none') }} {{ {'b': 2}|tojson(indent=2) }}
{{ [3, 1, 2]|sort }} {{ [3, 1, 2]|max }} {{ [3, 1, 2]|min }} {{ [3, 1, 2]|sum }} {{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ [1, 2, 3, 4, 5]|batch(2)|list }}
{{ 'line1\nline2\n\nline4'|indent(2) }}
{{ 'a & <b>'|e }} {{ {'t': 'x<y & "q"', 'u': 'é'}|tojson }} {{ 'é'|tojson(ensure_ascii=true) }} {{ [1.0, 1e20, 1e-7, -0.0]|tojson }}
{% raw %}{{ not rendered }} {% if %}{% endraw %}
{% for k, v in {'one': 1, 'two': 2}.items() %}{{ k }}={{ v }}{{ ', ' if not loop.last }}{% endfor %}
{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}{% endif %}{{ i }}{% endfor %}
{% if messages|length > 2 %}many{% elif messages|length > 1 %}two{% else %}few{% endif %}
{%- filter upper %} filtered {{ 'text' }}{% endfilter %}
{% generation %}generated {{ 1 + 1 }}{% endgeneration %}
  {%+ if true %}kept indent{% endif +%}
   {{- ' stripped' -}}   
   {# comment line #}
trailing {{ strftime_now('%Y-%m-%d') }}
"""

# Whitespace control corner cases for trim_blocks and lstrip_blocks.
WHITESPACE = "a\n  {% if true %}\n    b\n  {% endif %}\n  c {{ 'd' }}  {% if true %} e{% endif %}\n" \
    "\t{# c #}\n{%- if true -%}  f  {%- endif -%}\n\n g\r\n{% for x in [1,2] %}\n{{ x }}\n{% endfor %}\n" \
    "  {{ 'h' }}\n{%+ if true %}i{% endif %}{% raw -%}  j {%- endraw %}\nend\n"

TEMPLATES = {
    "qwen25_tools": QWEN25_TOOLS,
    "qwen3_think": QWEN3_THINK,
    "llama31_tools": LLAMA31_TOOLS,
    "mistral_tools": MISTRAL_TOOLS,
    "deepseek_flags": DEEPSEEK_FLAGS,
    "gemma_roles": GEMMA_ROLES,
    "features": FEATURES,
    "whitespace": WHITESPACE,
}

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Get the weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. Zürich"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "add", "description": "Add two numbers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}},
]

BASE = {"bos_token": "<s>", "eos_token": "</s>"}

CONTEXTS = {
    "single_user": dict(BASE, add_generation_prompt=True,
                        messages=[{"role": "user", "content": "Hello!"}]),
    "multi_turn": dict(BASE, add_generation_prompt=False, messages=[
        {"role": "system", "content": "  Be brief.  "},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"}]),
    "tool_calls": dict(BASE, add_generation_prompt=True, tools=TOOLS, messages=[
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "Weather in Zürich and 1+2?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call12345", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}},
            {"id": "call67890", "type": "function",
             "function": {"name": "add", "arguments": {"a": 1, "b": 2.5}}}]},
        {"role": "tool", "tool_call_id": "call12345", "content": "{\"temp\": 21}"},
        {"role": "tool", "tool_call_id": "call67890", "content": "3.5"},
        {"role": "assistant", "content": "It is 21°C; 1+2.5 = 3.5."},
        {"role": "user", "content": "Thanks"}]),
    "single_tool_call": dict(BASE, add_generation_prompt=True, tools=TOOLS, messages=[
        {"role": "user", "content": "Add 1 and 2"},
        {"role": "assistant", "tool_calls": [
            {"id": "abcdefghi", "type": "function",
             "function": {"name": "add", "arguments": {"a": 1, "b": 2}}}]},
        {"role": "tool", "tool_call_id": "abcdefghi", "content": "3"}]),
    "thinking_off": dict(BASE, add_generation_prompt=True, enable_thinking=False, messages=[
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nThe user greets.\n</think>\n\nHello!"},
        {"role": "user", "content": "Why?"}]),
    "reasoning_content": dict(BASE, add_generation_prompt=False, messages=[
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1", "reasoning_content": "\nthink 1\n"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "<think>t2</think>A2"}]),
    "unicode": dict(BASE, add_generation_prompt=True, messages=[
        {"role": "system", "content": "Réponds en français 🇫🇷"},
        {"role": "user", "content": "日本語 «quotes» \"dq\" 'sq' back\\slash\ttab\nnew <tag> & amp \u2028 \u00a0"},
        {"role": "assistant", "content": "Ответ 😀"},
        {"role": "user", "content": "ok"}]),
    "missing_keys": {"messages": [{"role": "user", "content": "no tokens, no flags"}]},
    "not_alternating": dict(BASE, messages=[
        {"role": "user", "content": "one"}, {"role": "user", "content": "two"}]),
    "empty_messages": dict(BASE, add_generation_prompt=True, messages=[]),
    "system_only": dict(BASE, add_generation_prompt=True, tools=TOOLS,
                        messages=[{"role": "system", "content": "Only a system prompt."}]),
    "content_list": dict(BASE, add_generation_prompt=True, messages=[
        {"role": "user", "content": [{"type": "text", "text": " part one "},
                                     {"type": "image"}, {"type": "text", "text": "two"}]}]),
}


class Generation(jinja2.ext.Extension):
    """transformers' {% generation %} block, without the assistant-mask bookkeeping."""

    tags = {"generation"}

    def parse(self, parser):
        next(parser.stream)
        return parser.parse_statements(["name:endgeneration"], drop_needle=True)


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(FIXED_TIME).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def testmodel_templates(source_dir):
    path = os.path.join(source_dir, "testmodel", "tokenizer.cc")
    if not os.path.exists(path):
        return {}
    text = open(path, encoding="utf-8").read()
    found = {}
    for name in ("kChatMlTemplate", "kInstTemplate", "kHeaderTemplate"):
        m = re.search(name + r' = R"tmpl\((.*?)\)tmpl"', text, re.S)
        if m:
            found["testmodel_" + name] = m.group(1)
    return found


def python_render(env, template, context):
    try:
        return True, env.from_string(template).render(**context)
    except jinja2.exceptions.TemplateError as e:
        return False, (type(e).__name__, str(e))
    except Exception as e:  # TypeError, ValueError... raised through jinja2 as in transformers
        return False, (type(e).__name__, str(e))


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    driver = sys.argv[1]
    source_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
    templates = dict(testmodel_templates(source_dir))
    templates.update(TEMPLATES)
    env = make_env()
    passed = failed = errors_both = 0
    with tempfile.TemporaryDirectory() as tmp:
        for tname, template in templates.items():
            tpath = os.path.join(tmp, tname + ".jinja")
            with open(tpath, "w", encoding="utf-8") as f:
                f.write(template)
            for cname, context in CONTEXTS.items():
                cpath = os.path.join(tmp, cname + ".json")
                with open(cpath, "w", encoding="utf-8") as f:
                    json.dump(context, f, ensure_ascii=False)
                ok, want = python_render(env, template, context)
                proc = subprocess.run([driver, tpath, cpath, str(FIXED_TIME)],
                                      capture_output=True, timeout=60)
                got = proc.stdout.decode("utf-8", "replace")
                err = proc.stderr.decode("utf-8", "replace").strip()
                if ok and proc.returncode == 0 and got == want:
                    passed += 1
                    continue
                if not ok and proc.returncode == 1:
                    kind, message = want
                    # raise_exception's message must come through unchanged.
                    if kind != "TemplateError" or err == "InvalidArgument: " + message:
                        passed += 1
                        errors_both += 1
                        continue
                failed += 1
                print(f"MISMATCH {tname} x {cname}")
                print(f"  jinja2: {want!r}")
                print(f"  ours:   rc={proc.returncode} out={got!r} err={err!r}")
    total = passed + failed
    print(f"golden: {passed}/{total} template x context pairs match jinja2 "
          f"({errors_both} of them are errors in both), {len(templates)} templates x "
          f"{len(CONTEXTS)} contexts")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
