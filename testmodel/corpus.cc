// The built-in training text of the test tokenizer: a few kilobytes of English prose, code and
// numbers written for this project, so the learned merges look like a real tokenizer's (" the",
// "ing", "return", digit pairs) without shipping anyone else's text.
#include "testmodel/tokenizer.h"

namespace hubnode::testmodel {

std::string_view BuiltinCorpus() {
  static constexpr std::string_view kCorpus = R"corpus(
The model hub keeps every file it has seen once, and only once. When a new checkpoint arrives,
the node splits each shard into chunks, hashes every chunk, and stores the chunks it does not
already have. Two fine-tuned models that share most of their weights therefore cost little more
than one. The same idea lets a node fetch a missing chunk from any peer that has it, and check the
hash before it trusts a single byte.

A mixture of experts is a layer that holds many small feed-forward networks and a router. For each
token the router scores every expert, keeps the best few, and mixes their outputs with weights that
sum to one. Most of the parameters sit in the experts, but each token only touches a handful of
them, which is why such models are fast for their size. The experts that are used most often can
stay on the GPU, while the rest wait in host memory or on a local disk until they are needed.

It was raining when the train reached the station. The platform was nearly empty, and the clock
above the ticket office said it was a quarter past seven. She walked to the end of the platform,
looked at the timetable, and decided to wait for the next train rather than take the bus. The bus
would have been cheaper, but it stopped in every village along the river and the trip took twice
as long. She bought a cup of tea, found a dry bench under the roof, and opened her notebook.

In the morning the baker opens the shop at six. He mixes flour, water, salt and a little yeast,
folds the dough every half hour, and shapes the loaves before the first customers arrive. On
Saturdays he also makes cinnamon rolls, and they are usually gone by nine. People say the secret is
patience: the dough rests for a long time in a cool room, and the flavour grows while it waits.

We tested the new storage engine on three machines. The first had a fast NVMe disk, the second a
slower SATA disk, and the third kept everything in memory. Reading a 4096 byte chunk took 12
microseconds on the first machine, 85 microseconds on the second and 2 microseconds on the third.
Writing was slower in every case, because each write was followed by a call to fsync. Over 1000
runs the median import speed was 1.8 GB/s, and the 99th percentile latency stayed under 40 ms.

Please read the instructions carefully before you start. Each question is worth 10 points, and
you have 90 minutes to answer all of them. You may use a calculator, but you may not use your
phone. If you finish early, check your answers again. When the time is up, put your pen down and
wait until the papers are collected. Good luck, and remember that it's better to write something
than nothing at all.

def tokenize(text, merges):
    words = text.split()
    tokens = []
    for word in words:
        parts = list(word)
        while len(parts) > 1:
            pairs = [(parts[i], parts[i + 1]) for i in range(len(parts) - 1)]
            best = min(pairs, key=lambda p: merges.get(p, 1 << 30))
            if best not in merges:
                break
            parts = merge_pair(parts, best)
        tokens.extend(parts)
    return tokens

class Cache:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = {}

    def get(self, key, default=None):
        return self.items.get(key, default)

    def put(self, key, value):
        if len(self.items) >= self.capacity:
            oldest = next(iter(self.items))
            del self.items[oldest]
        self.items[key] = value

#include <cstdint>
#include <string>
#include <vector>

// Returns the sum of the values in the range, or zero when it is empty.
int64_t Sum(const std::vector<int64_t>& values) {
  int64_t total = 0;
  for (int64_t value : values) total += value;
  return total;
}

struct Chunk {
  std::string id;
  uint64_t offset = 0;
  uint64_t size = 0;
};

std::vector<Chunk> SplitFile(const std::string& path, uint64_t file_size, uint64_t chunk_size) {
  std::vector<Chunk> chunks;
  for (uint64_t offset = 0; offset < file_size; offset += chunk_size) {
    uint64_t size = std::min(chunk_size, file_size - offset);
    chunks.push_back({path + ":" + std::to_string(offset), offset, size});
  }
  return chunks;
}

for (int i = 0; i < n; ++i) {
  if (values[i] > max_value) {
    max_value = values[i];
    max_index = i;
  }
}

const config = { port: 8080, host: "127.0.0.1", retries: 3, timeout: 2500 };
function fetchChunk(id, peer) {
  return fetch(`http://${peer}/chunks/${id}`).then((response) => response.arrayBuffer());
}

SELECT name, size, created_at FROM models WHERE size > 1000000 ORDER BY created_at DESC LIMIT 20;

The meeting is on Tuesday, 14 March 2023, at 10:30 in room 204. The budget for the year is
$125,000, of which 42% is already spent. Call 555-0137 if you cannot come. Version 2.4.1 was
released on 2024-06-18, version 2.5.0 on 2024-09-02, and version 3.0.0 is planned for 2025.
The numbers 0 1 2 3 4 5 6 7 8 9 10 11 12 16 32 64 128 256 512 1024 2048 4096 8192 16384 32768
65536 appear often in computing, and so do 100, 1000, 10000 and 1000000.

Why do we cache experts at all? Because the link between the host and the GPU is much slower than
the GPU's own memory. If every token had to copy its experts over the bus, the model would spend
most of its time waiting. With a good cache, the experts that are used together stay together, and
the hit rate can be higher than ninety percent. When the cache misses, the runtime asks the store
for the expert's tensors, and the store reads them from disk or from a peer. The router decides,
the cache remembers, and the store provides.

"Are you coming with us?" he asked. "I don't know yet," she said. "I'll tell you tomorrow." They
didn't talk much after that. The road was long and straight, the fields were green on both sides,
and the sky was full of small white clouds. When they reached the town, the market was still open,
so they bought bread, cheese, apples and a bottle of water, and sat down by the fountain to eat.

Every good test should be able to fail. A test that only checks that a function returns without
an error tells you very little; a test that compares the output with a value computed another way
tells you much more. Write the expected value down, explain where it comes from, and keep the test
small enough that a reader can see what it is about. When a bug is fixed, add a test that would
have caught it, so that it never comes back.

Learning a byte pair encoding is simple. Count every pair of adjacent symbols in the training
text, merge the most frequent pair into a new symbol, and repeat. The list of merges, in order, is
the tokenizer. Encoding a new word replays the merges: start from its bytes, and keep applying the
merge with the lowest rank until none applies. Frequent words end up as a single token, and rare
words are split into smaller pieces that the model has seen before.
)corpus";
  return kCorpus;
}

}  // namespace hubnode::testmodel
