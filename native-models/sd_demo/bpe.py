"""Byte-level BPE in CLIP's file format (vocab.json + merges.txt), learned from the demo captions.

Same algorithm and files as OpenAI's CLIP tokenizer: GPT-2 byte-to-unicode mapping, an end-of-word
marker "</w>" on the last symbol of each word, lower-cased, whitespace-cleaned text, and the specials
<|startoftext|> / <|endoftext|> at the end of the vocabulary. No third-party vocabulary is used.
"""
import json
import re
from collections import Counter

# CLIP's split: specials, English contractions, letter runs, single digits, other non-space runs.
SPLIT = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_", re.IGNORECASE)
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()


def clean(text):
    return re.sub(r"\s+", " ", text).strip().lower()


def words_of(text):
    return ["".join(BYTE_ENCODER[b] for b in w.encode("utf-8")) for w in SPLIT.findall(clean(text))]


def learn(captions, vocab_size):
    counts = Counter(w for c in captions for w in words_of(c))
    # Each word as a tuple of symbols, the last carrying </w>.
    words = {tuple(w[:-1]) + (w[-1] + "</w>",): n for w, n in counts.items()}
    base = list(BYTE_ENCODER.values())
    vocab = base + [b + "</w>" for b in base]
    merges = []
    while len(vocab) + 2 < vocab_size:
        pairs = Counter()
        for symbols, n in words.items():
            for a, b in zip(symbols, symbols[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), freq = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if freq < 2:
            break
        merges.append((a, b))
        vocab.append(a + b)
        merged = {}
        for symbols, n in words.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged
    vocab += [BOS, EOS]
    return {tok: i for i, tok in enumerate(vocab)}, merges


class ClipBpe:
    def __init__(self, vocab, merges, max_length=77):
        self.vocab = vocab
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.max_length = max_length
        self.bos, self.eos = vocab[BOS], vocab[EOS]
        self.pad = self.eos

    def bpe(self, word):
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:
            ranked = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
            rank, i = min(ranked)
            if rank == 1 << 30:
                break
            a, b = symbols[i], symbols[i + 1]
            out, j = [], 0
            while j < len(symbols):
                if j + 1 < len(symbols) and symbols[j] == a and symbols[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(symbols[j])
                    j += 1
            symbols = out
        return symbols

    def encode(self, text):
        ids = [self.vocab[s] for w in words_of(text) for s in self.bpe(w)]
        ids = [self.bos] + ids[: self.max_length - 2] + [self.eos]
        return ids + [self.pad] * (self.max_length - len(ids))


def save(folder, vocab, merges):
    with open(f"{folder}/vocab.json", "w") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(f"{folder}/merges.txt", "w") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS}
    with open(f"{folder}/special_tokens_map.json", "w") as f:
        json.dump(special, f, indent=2)
    with open(f"{folder}/tokenizer_config.json", "w") as f:
        json.dump({**special, "do_lower_case": True, "model_max_length": 77, "tokenizer_class": "CLIPTokenizer", "add_prefix_space": False}, f, indent=2)
