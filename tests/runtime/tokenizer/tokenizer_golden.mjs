// Compares runtime::Tokenizer (through tests/runtime/tokenizer/tokenize_main) with the Hugging Face
// tokenizers Rust crate (napi bindings, @anush008/tokenizers pinned in package-lock.json).
// Run by tokenizer_golden.sh: node tokenizer_golden.mjs DRIVER WORK_DIR
// WORK_DIR/models/<family>/ holds the testmodel checkpoints; this script derives further
// tokenizer.json variants (Qwen2 and Llama-3 Split regexes, ignore_merges, tuple merges, added-token
// options) and writes SentencePiece-style BPE fixtures (byte fallback, Prepend/Replace normalizer or
// Metaspace pre-tokenizer) of its own. Every string is encoded (with and without special tokens)
// and decoded by both; random id lists are decoded by both; DecodeStream must equal Decode.
// Exits 1 and prints the first mismatch when anything differs.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Tokenizer } from "@anush008/tokenizers";

const [driver, work] = process.argv.slice(2);
if (!driver || !work) {
  console.error("usage: node tokenizer_golden.mjs DRIVER WORK_DIR");
  process.exit(2);
}

const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const STRINGS = [
  "", " ", "  ", "\t", "\n", "\n\n", " \n ", "a\tb", "trailing spaces   ", "   leading",
  "Hello world", "hello world", "the thing is in the ring",
  "Hello, world! How's it going? I'm fine; we'll see, they've done it, she'd go.",
  "HOW'S IT GOING? I'M FINE", "don't won't can't", "12345678901234567890", "3.14159 and 1,000,000",
  "日本語のテキスト", "中文测试 你好世界", "한국어 텍스트", "Ünïcödé façade naïve café",
  "e\u0301 a\u0308 o\u0302 (combining marks)", "NFC: \u00e9 vs NFD: e\u0301",
  "Emoji: 😀👍🏽👨‍👩‍👧‍👦 🏳️‍🌈 ❤️", "Zalgo: Z̷̢̛a̴l̶g̵o̸", "<|im_start|>user\nhi<|im_end|>",
  "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
  "text<|endoftext|>more", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
  "<s>[INST] hello [/INST]", "</s><s>", " <s> spaced </s> ", "mixed\r\nline endings\r",
  "tabs\t\tand  spaces \t mixed", "     ", "a".repeat(300), "ab ".repeat(100),
  "\u00a0nbsp\u3000ideographic\u2028sep\u0085nel\u180emvs", "ﬁ ligature ①②③ ｆｕｌｌ",
  "math: ∑∫√∞ ≠ ≤ ½", "https://example.com/path?q=1&b=2#frag",
  "def f(x):\n    return x**2  # comment\n", "ALLCAPS CamelCase snake_case kebab-case",
  "İstanbul ΣΊΣΥΦΟΣ straße", "\u200b zero width \u200d joiner \ufeff bom", "A\u0000B\u0001",
  "x <mask> y<mask>z <mask>", "a<|思考|>b Ġhello hello", "hello world and hello worlds", "\u00ff\u0100\u0101",
  "it's 'quoted' 's 'S 'RE", "Ⅻ roman ² sup a‿b ◌̰x ſ K", "!!!???...,,,", "99 bottles, 1000000 ants, ٣٤٥ arabic digits",
];

// Random strings from pools of hard pieces (seeded, the same for every fixture).
const POOLS = [
  ["a", "b", "e", "the", "hello", "world", "ing", "Hello", "X", "Q", "zz"],
  [" ", "  ", "   ", "\t", "\n", "\r\n", " \n", "\n\n", "\u00a0", "\u3000", "\u2009"],
  ["0", "1", "12", "345", "2024", "٣", "²", "Ⅻ"],
  [".", ",", "!", "?", "'", "'s", "'ll", "'RE", "\"", "-", "--", "...", "(", ")", "#", "_", "@"],
  ["你", "好", "世界", "日本", "한", "é", "ü", "e\u0301", "\u0308", "ß", "İ", "Σ", "ς", "ﬁ"],
  ["😀", "👍🏽", "👨‍👩‍👧", "🏳️‍🌈", "\u200d", "\ufe0f", "🤖"],
  ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "[INST]", "<mask>", "<|eot_id|>"],
  ["▁", "Ġ", "Ċ", "<0x0A>", "\u0000", "\u007f", "\uffff", "\ufffd"],
];
function randomStrings(count, seed) {
  const rand = mulberry32(seed);
  const out = [];
  for (let i = 0; i < count; i++) {
    let s = "";
    const n = Math.floor(rand() * 16);
    for (let k = 0; k < n; k++) {
      const pool = POOLS[Math.floor(rand() * POOLS.length)];
      s += pool[Math.floor(rand() * pool.length)];
    }
    out.push(s);
  }
  return out;
}

// ---- fixtures derived from the testmodel byte-level tokenizers ----------------------------------

function readJson(p) {
  return JSON.parse(fs.readFileSync(p, "utf8"));
}

function writeFixture(name, tok, config) {
  const dir = path.join(work, "fixtures", name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tok));
  if (config) fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(config));
  return dir;
}

function addedToken(id, content, opts = {}) {
  return {
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false,
    special: true, ...opts,
  };
}

// Appends vocab entries right after the base vocab and shifts added-token ids past them.
function extendVocab(tok, tokens) {
  const vocab = tok.model.vocab;
  let next = Math.max(...Object.values(vocab)) + 1;
  const shift = tokens.filter((t) => !(t in vocab)).length;
  for (const t of tokens) if (!(t in vocab)) vocab[t] = next++;
  for (const a of tok.added_tokens) if (!(a.content in vocab)) a.id += shift;
}

function appendAdded(tok, content, opts) {
  const id = Math.max(...tok.added_tokens.map((a) => a.id), ...Object.values(tok.model.vocab)) + 1;
  tok.added_tokens.push(addedToken(id, content, opts));
}

function byteLevelVariants(models) {
  const dirs = [];
  for (const family of fs.readdirSync(models).sort()) {
    const dir = path.join(models, family);
    dirs.push({ name: family, dir });
  }
  const base = path.join(models, "qwen2");
  const qwen = readJson(path.join(base, "tokenizer.json"));
  qwen.normalizer = { type: "NFC" };
  qwen.pre_tokenizer = {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: QWEN2_REGEX }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    ],
  };
  qwen.model.merges = qwen.model.merges.map((m) => m.split(" "));
  appendAdded(qwen, "<mask>", { lstrip: true, rstrip: true, special: false });
  appendAdded(qwen, "hello world", { normalized: true, special: false });
  appendAdded(qwen, "ring", { single_word: true, special: false });
  // Outside the byte alphabet (decoded from its UTF-8) and inside it (decoded as bytes: " hello").
  appendAdded(qwen, "<|思考|>", { special: true });
  appendAdded(qwen, "Ġhello", { special: false, normalized: false });
  dirs.push({
    name: "qwen2-split-regex",
    dir: writeFixture("qwen2-split-regex", qwen, readJson(path.join(base, "tokenizer_config.json"))),
  });

  const lbase = path.join(models, "llama");
  const llama = readJson(path.join(lbase, "tokenizer.json"));
  extendVocab(llama, ["worlds", "ĠCamelCase", "abcabc"]);
  llama.model.ignore_merges = true;
  llama.pre_tokenizer = {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: LLAMA3_REGEX }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
  const bot = llama.added_tokens.find((a) => a.content === "<|begin_of_text|>");
  llama.post_processor = {
    type: "Sequence",
    processors: [
      { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
      {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } },
                 { Sequence: { id: "A", type_id: 0 } }],
        pair: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } },
               { Sequence: { id: "A", type_id: 0 } },
               { SpecialToken: { id: "<|begin_of_text|>", type_id: 1 } },
               { Sequence: { id: "B", type_id: 1 } }],
        special_tokens: {
          "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [bot.id], tokens: ["<|begin_of_text|>"] },
        },
      },
    ],
  };
  const lconfig = readJson(path.join(lbase, "tokenizer_config.json"));
  dirs.push({ name: "llama3-ignore-merges", dir: writeFixture("llama3-ignore-merges", llama, lconfig) });

  const gpt2 = readJson(path.join(models, "olmoe", "tokenizer.json"));
  gpt2.pre_tokenizer.add_prefix_space = true;
  dirs.push({ name: "bytelevel-prefix-space", dir: writeFixture("bytelevel-prefix-space", gpt2, null) });
  return dirs;
}

// ---- SentencePiece-style BPE fixtures -------------------------------------------------------------

const SP_WORDS = [
  "▁the", "▁hello", "▁world", "ing", "▁in", "er", "▁a", "▁Hello", "▁is", "▁thing", "▁ring",
  "▁[INST]", "▁[/INST]", "INST", "▁▁", "▁▁▁▁", "▁12", "你好", "▁café", "▁don", "'t", "▁world!",
];
const SP_CHARS = [
  "▁", ..."abcdefghijklmnopqrstuvwxyz", ..."ABCDEFGHIJKLMNOPQRSTUVWXYZ", ..."0123456789",
  ..."., !?'\"-:;()[]/_#*=", "é", "你", "好", "世", "ü",
];

function spFixture(style) {
  const vocab = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  let next = 259;
  for (const c of SP_CHARS) if (!(c in vocab)) vocab[c] = next++;
  const merges = [];
  for (const w of SP_WORDS) {
    const chars = [...w];
    let cur = chars[0];
    for (const c of chars.slice(1)) {
      if (!(cur + c in vocab)) {
        merges.push(style.tupleMerges ? [cur, c] : `${cur} ${c}`);
        vocab[cur + c] = next++;
      }
      cur += c;
    }
  }
  merges.push(style.tupleMerges ? ["▁▁", "▁▁"] : "▁▁ ▁▁");  // already in vocab: a second route
  const spDecoder = {
    type: "Sequence",
    decoders: [
      { type: "Replace", pattern: { String: "▁" }, content: " " },
      { type: "ByteFallback" }, { type: "Fuse" },
      { type: "Strip", content: " ", start: 1, stop: 0 },
    ],
  };
  const tok = {
    version: "1.0", truncation: null, padding: null,
    added_tokens: [
      addedToken(0, "<unk>"), addedToken(1, "<s>"), addedToken(2, "</s>"),
      ...(style.instTokens ? [addedToken(next, "[INST]", { special: false, normalized: false }),
                              addedToken(next + 1, "[/INST]", { special: false, normalized: false })] : []),
    ],
    normalizer: null, pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
             { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: spDecoder,
    model: {
      type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null,
      end_of_word_suffix: null, fuse_unk: style.fuseUnk ?? true, byte_fallback: style.byteFallback ?? true,
      ignore_merges: false, vocab, merges,
    },
  };
  if (style.kind === "legacy") {
    tok.normalizer = {
      type: "Sequence",
      normalizers: [{ type: "Prepend", prepend: "▁" },
                    { type: "Replace", pattern: { String: " " }, content: "▁" }],
    };
  } else if (style.kind === "metaspace-first") {
    tok.pre_tokenizer = { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false };
  } else if (style.kind === "metaspace-decoder") {
    tok.pre_tokenizer = { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true };
    tok.decoder = { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true };
  } else if (style.kind === "misc1") {
    tok.normalizer = { type: "Sequence", normalizers: [{ type: "NFD" }, { type: "StripAccents" }, { type: "Lowercase" }] };
    tok.pre_tokenizer = { type: "Sequence", pretokenizers: [{ type: "Whitespace" }, { type: "Digits", individual_digits: true }] };
    tok.decoder = { type: "Sequence", decoders: [{ type: "ByteFallback" }, { type: "Fuse" }] };
  } else if (style.kind === "misc2") {
    tok.normalizer = { type: "Sequence", normalizers: [{ type: "NFKC" }, { type: "Strip", strip_left: true, strip_right: true },
      { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }] };
    tok.pre_tokenizer = { type: "Sequence", pretokenizers: [
      { type: "Punctuation", behavior: "MergedWithPrevious" }, { type: "WhitespaceSplit" },
      { type: "Split", pattern: { String: "-" }, behavior: "MergedWithNext", invert: false },
      { type: "Digits", individual_digits: false }] };
  } else if (style.kind === "misc3") {
    tok.pre_tokenizer = { type: "Split", pattern: { Regex: "\\w+|\\s+|[^\\w\\s]+" }, behavior: "Isolated", invert: false };
    tok.decoder = { type: "Sequence", decoders: [{ type: "ByteFallback" }, { type: "Fuse" }] };
  }
  const config = { add_bos_token: true, add_eos_token: false, bos_token: "<s>",
                   eos_token: { content: "</s>", lstrip: false, normalized: false, rstrip: false, single_word: false },
                   tokenizer_class: "LlamaTokenizer" };
  return writeFixture(`sp-${style.kind}${style.suffix ?? ""}`, tok, config);
}

// ---- comparison -----------------------------------------------------------------------------------

function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let failures = 0;
let checks = 0;
function check(fixture, what, input, ours, want) {
  checks++;
  const a = JSON.stringify(ours);
  const b = JSON.stringify(want);
  if (a === b) return;
  failures++;
  if (failures <= 1 || process.env.GOLDEN_VERBOSE) {
    console.error(`MISMATCH [${fixture}] ${what} for input ${JSON.stringify(input)}`);
    console.error(`  ours:      ${a}`);
    console.error(`  reference: ${b}`);
  }
}

async function compare(name, dir) {
  const tokPath = path.join(dir, "tokenizer.json");
  const cfgPath = path.join(dir, "tokenizer_config.json");
  const ref = Tokenizer.fromFile(tokPath);
  const vocabSize = ref.getVocabSize(true);
  const rand = mulberry32(name.length * 7919 + 17);
  const idLists = [];
  for (let i = 0; i < 60; i++) {
    const n = 1 + Math.floor(rand() * 24);
    const ids = [];
    for (let k = 0; k < n; k++) ids.push(Math.floor(rand() * (vocabSize + 3)));
    idLists.push(ids);
  }
  const lines = [...STRINGS.map((s) => JSON.stringify(s)), ...idLists.map((l) => JSON.stringify(l))];
  const args = fs.existsSync(cfgPath) ? [tokPath, cfgPath] : [tokPath];
  const run = spawnSync(driver, args, { input: lines.join("\n") + "\n", maxBuffer: 1 << 28 });
  if (run.status !== 0) {
    console.error(`[${name}] driver failed (${run.status}): ${run.stderr}`);
    failures++;
    return;
  }
  const outs = run.stdout.toString("utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
  let roundTrips = 0;
  for (let i = 0; i < STRINGS.length; i++) {
    const s = STRINGS[i];
    const o = outs[i];
    const plain = (await ref.encode(s, null, { addSpecialTokens: false })).getIds();
    const special = (await ref.encode(s, null, { addSpecialTokens: true })).getIds();
    check(name, "encode", s, o.ids, plain);
    check(name, "encode add_special_tokens", s, o.ids_special, special);
    const dec = await ref.decode(plain, false);
    check(name, "decode(encode)", s, o.decoded, dec);
    check(name, "decode(encode) skip_special", s, o.decoded_skip, await ref.decode(plain, true));
    check(name, "DecodeStream == Decode", s, o.streamed, o.decoded);
    if (dec === s) roundTrips++;
  }
  for (let i = 0; i < idLists.length; i++) {
    const ids = idLists[i];
    const o = outs[STRINGS.length + i];
    check(name, "decode", ids, o.decoded, await ref.decode(ids, false));
    check(name, "decode skip_special", ids, o.decoded_skip, await ref.decode(ids, true));
    check(name, "DecodeStream == Decode", ids, o.streamed, o.decoded);
    check(name, "DecodeStream == Decode skip_special", ids, o.streamed_skip, o.decoded_skip);
  }
  console.log(`${name}: ${STRINGS.length} strings (${roundTrips} exact round trips), ${idLists.length} id lists`);
}

STRINGS.push(...randomStrings(200, 12345));
const fixtures = byteLevelVariants(path.join(work, "models"));
for (const style of [
  { kind: "legacy" }, { kind: "legacy", suffix: "-tuple-inst", tupleMerges: true, instTokens: true },
  { kind: "metaspace-first" }, { kind: "metaspace-decoder", byteFallback: false, fuseUnk: false },
  { kind: "misc1" }, { kind: "misc2", byteFallback: false }, { kind: "misc3" },
]) {
  const dir = spFixture(style);
  fixtures.push({ name: path.basename(dir), dir });
}
for (const f of fixtures) await compare(f.name, f.dir);
console.log(`${checks} checks, ${failures} mismatches (reference: @anush008/tokenizers 0.6.0 = tokenizers crate 0.22.2)`);
process.exit(failures === 0 ? 0 : 1);
