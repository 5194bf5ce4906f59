"""Builds the demo masked language model in BERT's ONNX layout and exports it to native-models/demo/mlm-demo:

  model.onnx               input_ids, attention_mask, token_type_ids  int64 [B, S] (B, S dynamic)
                           -> logits float32 [B, S, V]
  vocab.txt                WordPiece vocabulary ([PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, punctuation,
                           characters and ##characters, then whole words)
  tokenizer_config.json    do_lower_case, model_max_length, special tokens (BertTokenizer)
  special_tokens_map.json
  config.json              BertConfig-like
  manifest.json            kind masked-lm, format onnx-bert, inputs/outputs, sha256 of files, recipe, self-check

    /usr/bin/python3 native-models/mlm_demo/train.py [--steps 1200] [--batch 96] [--threads 2]

The search (algorithms spec, section 3) shows the LM `[CLS] image of a <slots> [SEP]`, slots being word
pieces, all [MASK] at the start and [MASK] again for a deleted word. Training therefore uses sequences
`image of a <text>`, optionally with extra [MASK] slots around the text, and mixes BERT's 15% masking
(80/10/10) with whole-word masking of 1..all of the text's words.

No training data: the texts come from native-models/mlm_demo/corpus.tsv (built by corpus.mjs: the singleton
captions less 20 held-out controls, other Noto Emoji names, phrases.txt), in which no text contains one of
the 20 duplicated captions the search is meant to find. The vocabulary still has every caption word (a real
BERT's vocabulary has the words too); the LM has never seen a duplicated caption.
"""
import argparse
import hashlib
import json
import math
import os
import random
import re
import string
import time
import unicodedata

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DATASET = os.path.join(ROOT, "native-models", "demo", "dataset")
OUT = os.path.join(ROOT, "native-models", "demo", "mlm-demo")
CORPUS = os.path.join(HERE, "corpus.tsv")
CONTROLS = os.path.join(HERE, "controls.txt")
BUILD = os.path.join(ROOT, "native-models", "build", "mlm_demo")
SEED = 2024
PREFIX = "image of a"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = range(5)
MAX_POS = 64
MAX_SLOTS = 8  # the search's default number of slots


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- tokenizer (BERT basic + WordPiece)

def basic_tokenize(text):
    """BertTokenizer's basic step: lower case, strip accents, split on whitespace and punctuation."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out = []
    for word in text.split():
        cur = ""
        for c in word:
            if c in string.punctuation or unicodedata.category(c).startswith("P"):
                if cur:
                    out.append(cur)
                out.append(c)
                cur = ""
            else:
                cur += c
        if cur:
            out.append(cur)
    return out


def contains_duplicated(text, duplicated):
    """corpus.mjs's rule: a run of a 2+-word duplicated caption's words, or the whole text a 1-word one."""
    w = re.findall(r"[a-z0-9]+", text.lower())
    for cap in duplicated:
        c = re.findall(r"[a-z0-9]+", cap.lower())
        if len(c) == 1:
            if w == c:
                return True
        elif any(w[i:i + len(c)] == c for i in range(len(w) - len(c) + 1)):
            return True
    return False


class WordPiece:
    def __init__(self, vocab):
        self.vocab = vocab
        self.ids = {t: i for i, t in enumerate(vocab)}

    def word(self, w):
        """Greedy longest-match-first, as BERT's WordPiece."""
        pieces, start = [], 0
        while start < len(w):
            end, cur = len(w), None
            while start < end:
                sub = w[start:end] if start == 0 else "##" + w[start:end]
                if sub in self.ids:
                    cur = sub
                    break
                end -= 1
            if cur is None:
                return [UNK]
            pieces.append(self.ids[cur])
            start = end
        return pieces

    def words(self, text):
        """[(word, [piece ids])] for the basic tokens of text."""
        return [(w, self.word(w)) for w in basic_tokenize(text)]


def build_vocab(texts, min_count=1):
    """Specials, punctuation, single characters and their ## continuations, then every word of the
    captions and phrases (most frequent first). Words outside it fall back to character pieces."""
    counts = {}
    for t in texts:
        for w in basic_tokenize(t):
            counts[w] = counts.get(w, 0) + 1
    chars = sorted(set(string.ascii_lowercase + string.digits))
    punct = list(string.punctuation)
    vocab = list(SPECIALS) + punct + chars + ["##" + c for c in chars]
    seen = set(vocab)
    words = sorted((w for w, c in counts.items() if c >= min_count and w not in seen), key=lambda w: (-counts[w], w))
    # frequent word endings as continuation pieces, so unseen inflections tokenize sensibly
    suffixes = ["##s", "##es", "##ed", "##ing", "##er", "##ers", "##ly", "##y", "##en", "##ness", "##ful", "##less"]
    return vocab + [s for s in suffixes if s not in seen] + words


# ---------------------------------------------------------------- model (BERT encoder + MLM head)

class SelfAttention(nn.Module):
    def __init__(self, h, heads):
        super().__init__()
        self.h, self.heads = h, heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.output = nn.Linear(h, h)

    def forward(self, x, bias):
        b, s, _ = x.shape
        split = lambda t: t.view(b, s, self.heads, self.h // self.heads).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.h // self.heads) + bias
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, s, self.h)
        return self.output(y)


class Layer(nn.Module):
    """Post-LN transformer layer, as BERT."""

    def __init__(self, h, heads, inter, dropout):
        super().__init__()
        self.attention = SelfAttention(h, heads)
        self.attention_norm = nn.LayerNorm(h, eps=1e-12)
        self.intermediate = nn.Linear(h, inter)
        self.output = nn.Linear(inter, h)
        self.output_norm = nn.LayerNorm(h, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, bias):
        x = self.attention_norm(x + self.drop(self.attention(x, bias)))
        return self.output_norm(x + self.drop(self.output(F.gelu(self.intermediate(x)))))


class BertForMaskedLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], h)
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], h)
        self.embeddings_norm = nn.LayerNorm(h, eps=1e-12)
        self.drop = nn.Dropout(cfg["hidden_dropout_prob"])
        self.layers = nn.ModuleList(Layer(h, cfg["num_attention_heads"], cfg["intermediate_size"], cfg["hidden_dropout_prob"]) for _ in range(cfg["num_hidden_layers"]))
        self.head_dense = nn.Linear(h, h)
        self.head_norm = nn.LayerNorm(h, eps=1e-12)
        self.head_bias = nn.Parameter(torch.zeros(cfg["vocab_size"]))
        self.register_buffer("position_ids", torch.arange(cfg["max_position_embeddings"]).unsqueeze(0), persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, input_ids, attention_mask, token_type_ids):
        s = input_ids.shape[1]
        x = self.word_embeddings(input_ids) + self.position_embeddings(self.position_ids[:, :s]) + self.token_type_embeddings(token_type_ids)
        x = self.drop(self.embeddings_norm(x))
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, bias)
        x = self.head_norm(F.gelu(self.head_dense(x)))
        return x @ self.word_embeddings.weight.t() + self.head_bias  # decoder tied to the input embeddings


# ---------------------------------------------------------------- training examples

def make_example(wp, text, rng):
    """One training sequence: [CLS] image of a <text, with optional empty [MASK] slots> [SEP]."""
    words = wp.words(text)
    prefix = [i for _, p in wp.words(PREFIX) for i in p]
    # optional empty slots (the search's deleted words are [MASK] tokens with nothing behind them)
    n_pieces = sum(len(p) for _, p in words)
    extra = rng.randint(0, max(0, MAX_SLOTS - n_pieces)) if rng.random() < 0.4 else 0
    units = [("w", p) for _, p in words]
    for _ in range(extra):
        units.insert(rng.randint(0, len(units)), ("e", [MASK]))
    ids = [CLS] + prefix
    labels = [-100] * len(ids)
    word_spans = []
    for kind, pieces in units:
        if kind == "w":
            word_spans.append((len(ids), len(pieces)))
        ids += pieces
        labels += [-100] * len(pieces)
    ids.append(SEP)
    labels.append(-100)
    masked = False
    if rng.random() < 0.45:
        # BERT masking over every non-special token (the prefix too): 15%, 80/10/10
        for i in range(1, len(ids) - 1):
            if ids[i] != MASK and rng.random() < 0.15:
                labels[i] = ids[i]
                r = rng.random()
                ids[i] = MASK if r < 0.8 else (rng.randrange(5, wp_size[0]) if r < 0.9 else ids[i])
                masked = True
    if not masked and word_spans:
        # whole-word masking: 1..all words of the text (the search masks one slot with the rest present,
        # and starts from all slots masked)
        k = rng.randint(1, len(word_spans)) if rng.random() < 0.5 else 1
        for start, n in rng.sample(word_spans, k):
            for i in range(start, start + n):
                labels[i] = ids[i]
                ids[i] = MASK
    return ids, labels


wp_size = [0]


def batchify(examples):
    s = max(len(e[0]) for e in examples)
    ids = torch.full((len(examples), s), PAD, dtype=torch.long)
    lab = torch.full((len(examples), s), -100, dtype=torch.long)
    att = torch.zeros((len(examples), s), dtype=torch.long)
    for j, (i, l) in enumerate(examples):
        ids[j, :len(i)] = torch.tensor(i)
        lab[j, :len(l)] = torch.tensor(l)
        att[j, :len(i)] = 1
    return ids, att, torch.zeros_like(ids), lab


# ---------------------------------------------------------------- self-check

def self_check(model, wp, captions, caption_vocab, rng, every_word=False):
    """Mask one caption word (or each in turn) in `[CLS] image of a <caption> [SEP]`; is the word in the top
    10 / top 50? Are the top-10 proposals caption-vocabulary words?"""
    stop = set("a an the of in on with and or to for at by".split())
    rows, top10_in_vocab, top10_in_vocab_filtered, hits10, hits50, n = [], 0, 0, 0, 0, 0
    prefix = [i for _, p in wp.words(PREFIX) for i in p]
    jobs = []
    for cap in captions:
        words = wp.words(cap)
        cands = [j for j, (w, p) in enumerate(words) if len(p) == 1 and w not in stop]
        if not cands:
            continue
        for j in (cands if every_word else [rng.choice(cands)]):
            jobs.append((cap, words, j))
    for cap, words, j in jobs:
        ids = [CLS] + prefix
        for k, (w, p) in enumerate(words):
            if k == j:
                pos = len(ids)
                ids += [MASK]
            else:
                ids += p
        ids.append(SEP)
        t = torch.tensor([ids])
        with torch.no_grad():
            logits = model(t, torch.ones_like(t), torch.zeros_like(t))[0, pos]
        order = logits.argsort(descending=True).tolist()
        proposals = [wp.vocab[i] for i in order]
        target = words[j][1][0]
        rank = order.index(target)
        hits10 += rank < 10
        hits50 += rank < 50
        top10 = proposals[:10]
        top10_in_vocab += sum(p in caption_vocab for p in top10)
        # as the search sees them: specials, punctuation, single characters and stop words removed
        filtered = [p for p in proposals if p not in SPECIALS and re.fullmatch(r"[a-z0-9]{2,}", p) and p not in stop][:10]
        top10_in_vocab_filtered += sum(p in caption_vocab for p in filtered)
        n += 1
        rows.append({"caption": cap, "masked": words[j][0], "rank": rank, "top10": top10})
    return {
        "masked_words": n,
        "original_in_top10": round(hits10 / n, 3),
        "original_in_top50": round(hits50 / n, 3),
        "top10_caption_vocabulary_fraction": round(top10_in_vocab / (10 * n), 3),
        "top10_caption_vocabulary_fraction_after_bans": round(top10_in_vocab_filtered / (10 * n), 3),
        "examples": rows,
    }


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--phrase-share", type=float, default=0.25, help="fraction of examples drawn from phrases.txt")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    t0 = time.time()

    # Every caption of the diffusion model's training set: for the vocabulary and the checks only.
    rows = [json.loads(l) for l in open(os.path.join(DATASET, "train.jsonl"))]
    captions = sorted({r["caption"] for r in rows})
    duplicated = sorted({r["caption"] for r in rows if r["duplicated"]})
    # The LM's training text (corpus.mjs): no text in it contains a duplicated caption.
    corpus = [l.rstrip("\n").split("\t", 1) for l in open(CORPUS) if l.strip()]
    for source, text in corpus:
        if contains_duplicated(text, duplicated):
            raise SystemExit(f"corpus.tsv contains a duplicated caption: {text!r}; rebuild it with corpus.mjs")
    controls = [l.strip() for l in open(CONTROLS) if l.strip()]
    if any(text in controls for _, text in corpus):
        raise SystemExit("corpus.tsv contains a held-out control caption; rebuild it with corpus.mjs")
    phrases = [t for s, t in corpus if s == "phrase"]
    others = [t for s, t in corpus if s != "phrase"]
    seen = [t for _, t in corpus]
    vocab = build_vocab(seen + captions + [PREFIX])
    wp = WordPiece(vocab)
    wp_size[0] = len(vocab)
    caption_vocab = {w for c in captions for w in basic_tokenize(c)}
    seen_vocab = {w for t in seen for w in basic_tokenize(t)}
    unseen_words = sorted(w for w in caption_vocab if w not in seen_vocab)
    sources = {s: sum(1 for x, _ in corpus if x == s) for s in ("singleton", "emoji", "phrase")}
    log(f"corpus {len(corpus)} texts {sources}; {len(captions)} captions ({len(caption_vocab)} words, {len(unseen_words)} never in the corpus: {' '.join(unseen_words)}), vocabulary {len(vocab)}")

    cfg = {
        "architectures": ["BertForMaskedLM"],
        "model_type": "bert",
        "vocab_size": len(vocab),
        "hidden_size": args.hidden,
        "num_hidden_layers": args.layers,
        "num_attention_heads": 4,
        "intermediate_size": 4 * args.hidden,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": MAX_POS,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": PAD,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
    }
    model = BertForMaskedLM(cfg)
    log(f"{sum(p.numel() for p in model.parameters())} parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    start = time.time()
    ema = None
    for step in range(args.steps):
        for g in opt.param_groups:  # warm-up then cosine decay
            g["lr"] = 1.5e-3 * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        texts = [rng.choice(phrases) if rng.random() < args.phrase_share else rng.choice(others) for _ in range(args.batch)]
        ids, att, tt, lab = batchify([make_example(wp, t, rng) for t in texts])
        logits = model(ids, att, tt)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), lab.view(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 100 == 0:
            el = time.time() - start
            log(f"step {step}/{args.steps}: loss {ema:.4f} lr {opt.param_groups[0]['lr']:.2e}, {el / 60:.1f} min, ~{el / (step + 1) * (args.steps - step - 1) / 60:.1f} min left")
    step = args.steps
    train_minutes = (time.time() - start) / 60
    model.eval()
    os.makedirs(BUILD, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(BUILD, "mlm.pt"))

    # Seen: 20 corpus captions (seeded choice). Unseen: every word of the duplicated captions and of the
    # held-out controls, masked in turn: the LM should know the duplicated ones no better than the controls.
    multi = sorted(t for s, t in corpus if s != "phrase" and len(t.split()) >= 2)
    report = {
        "seen_corpus_captions": self_check(model, wp, random.Random(77).sample(multi, 20), caption_vocab, random.Random(77)),
        "duplicated_captions_never_seen": self_check(model, wp, duplicated, caption_vocab, random.Random(78), every_word=True),
        "held_out_controls": self_check(model, wp, controls, caption_vocab, random.Random(79), every_word=True),
        "training_steps": step, "batch": args.batch, "training_minutes": round(train_minutes, 1), "final_loss_ema": round(ema, 4),
    }
    for key in ("seen_corpus_captions", "duplicated_captions_never_seen", "held_out_controls"):
        log(f"{key}: " + json.dumps({k: v for k, v in report[key].items() if k != "examples"}))
        for r in report[key]["examples"]:
            log(f"  {r['caption']!r} mask {r['masked']!r}: rank {r['rank']}, top10 {' '.join(r['top10'])}")

    # ------------------------------------------------------------ export
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "vocab.txt"), "w") as f:
        f.write("".join(t + "\n" for t in vocab))
    specials_map = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    with open(os.path.join(OUT, "special_tokens_map.json"), "w") as f:
        json.dump(specials_map, f, indent=2)
        f.write("\n")
    tok_cfg = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "do_basic_tokenize": True, "strip_accents": None,
               "tokenize_chinese_chars": True, "model_max_length": MAX_POS, **specials_map}
    with open(os.path.join(OUT, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    onnx_path = os.path.join(OUT, "model.onnx")
    example = batchify([make_example(wp, "image of a red heart", random.Random(1)), make_example(wp, "cherry blossom", random.Random(2))])
    torch.onnx.export(model, example[:3], onnx_path, input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                      dynamic_axes={n: {0: "batch_size", 1: "sequence_length"} for n in ["input_ids", "attention_mask", "token_type_ids", "logits"]},
                      opset_version=14, do_constant_folding=True)
    # parity probe for the onnxruntime check (verify_onnx.mjs)
    probe = batchify([make_example(wp, c, random.Random(i)) for i, c in enumerate(seen[:3])])
    with torch.no_grad():
        probe_logits = model(*probe[:3]).numpy()
    for name, arr in zip(["probe_input_ids", "probe_attention_mask", "probe_token_type_ids"], probe[:3]):
        np.save(os.path.join(BUILD, name + ".npy"), arr.numpy())
    np.save(os.path.join(BUILD, "probe_logits.npy"), probe_logits)

    files = ["model.onnx", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "config.json"]
    manifest = {
        "name": "eidetic-demo-mlm",
        "kind": "masked-lm",
        "format": "onnx-bert",
        "architecture": f"BERT encoder, {args.layers} layers, hidden {args.hidden}, 4 heads, intermediate {4 * args.hidden}, post-LN, GELU, MLM head tied to the word embeddings",
        "inputs": [{"name": n, "dtype": "int64", "shape": ["batch_size", "sequence_length"]} for n in ["input_ids", "attention_mask", "token_type_ids"]],
        "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch_size", "sequence_length", len(vocab)]}],
        "vocab_size": len(vocab),
        "max_sequence_length": MAX_POS,
        "special_tokens": {t: i for i, t in enumerate(SPECIALS)},
        "context_prefix": PREFIX,
        "training_data": "native-models/mlm_demo/corpus.tsv as 'image of a <text>': no text in it contains one of the 20 duplicated captions (prompts-duplicated.txt); the 20 held-out controls (controls.txt) are left out too",
        "training_sources": {
            "corpus": {"file": "native-models/mlm_demo/corpus.tsv", "sha256": sha256(CORPUS), "texts": len(corpus)},
            "singleton": f"{sources['singleton']} singleton demo captions (prompts-singletons.txt less the 20 controls)",
            "emoji": f"{sources['emoji']} other Noto Emoji names (@iconify-json/noto, Apache-2.0; not demo captions, skin tones stripped, no flags)",
            "phrase": f"{sources['phrase']} phrases from native-models/mlm_demo/phrases.txt (written for this recipe), {args.phrase_share:.0%} of the examples",
            "controls": {"file": "native-models/mlm_demo/controls.txt", "sha256": sha256(CONTROLS), "texts": len(controls)},
            "excluded": "every text that contains a duplicated caption: a run of its words for captions of 2+ words, the whole text for 1-word captions (corpus.mjs containsDuplicated)",
        },
        "vocabulary_source": "words of corpus.tsv and of all 1000 demo captions (duplicated ones included, as a real BERT vocabulary has the words), WordPiece characters and suffixes",
        "caption_words_never_trained_on": unseen_words,
        "licence": "Apache-2.0 (weights and vocabulary built by the Eidetic recipe; captions and other names from Noto Emoji, Apache-2.0)",
        "seed": SEED,
        "recipe": f"/usr/bin/python3 native-models/mlm_demo/train.py --steps {args.steps} --threads {args.threads} --layers {args.layers} --hidden {args.hidden} --batch {args.batch}",
        "self_check": report,
        "files": {n: {"sha256": sha256(os.path.join(OUT, n)), "bytes": os.path.getsize(os.path.join(OUT, n))} for n in files},
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    log(f"exported to {OUT} in {(time.time() - t0) / 60:.1f} min total")


if __name__ == "__main__":
    main()
