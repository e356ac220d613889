"""The datasets `crossrank download` knows: each file's official URL, published checksum and size."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from crossrank.data.download.archive import is_archive

_HEX_LENGTH = {"md5": 32, "sha256": 64}


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file. ``md5``/``sha256``: published digest (hex) or None if none is
    published (then the sha256 computed on download is recorded in ``FILE.sha256``).
    ``size``: exact byte count when known. ``contents``: what an archive is known to hold
    (paths relative to the extraction folder; informational, used in messages)."""

    name: str
    url: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    description: str = ""
    contents: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if "/" in self.name or "\\" in self.name or self.name in ("", ".", ".."):
            raise ValueError(f"RemoteFile name must be a plain file name, got {self.name!r}")
        for algorithm, digest in (("md5", self.md5), ("sha256", self.sha256)):
            if digest is not None and not re.fullmatch(f"[0-9a-f]{{{_HEX_LENGTH[algorithm]}}}", digest):
                raise ValueError(f"{self.name}: {algorithm} must be {_HEX_LENGTH[algorithm]} lowercase hex digits, got {digest!r}")

    @property
    def is_archive(self) -> bool:
        return is_archive(self.name)

    def url_from(self, base_url: str | None = None) -> str:
        """The official URL, or ``BASE_URL/NAME`` when a mirror base URL is given."""
        return self.url if not base_url else f"{base_url.rstrip('/')}/{self.name}"


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    files: tuple[RemoteFile, ...]
    terms: str = ""

    def file(self, name: str) -> RemoteFile:
        for remote in self.files:
            if remote.name == name:
                return remote
        raise ValueError(f"{self.name} has no file {name!r}; it has: {', '.join(f.name for f in self.files)}")


_MSMARCO = "https://msmarco.z22.web.core.windows.net/msmarcoranking"
# ir_datasets sends this header for the big MS MARCO blobs (older Azure API versions mishandle them).
_AZURE = (("X-Ms-Version", "2019-12-12"),)
_MSMARCO_TERMS = "MS MARCO: non-commercial research use only (https://microsoft.github.io/msmarco/)"

# Checksums and sizes: ir_datasets `ir_datasets/etc/downloads.json` (allenai/ir_datasets) gives
# the expected md5 and exact size ("size_hint") of queries.tar.gz, qrels.train.tsv,
# top1000.dev.tar.gz, triples.train.small.tar.gz, the DL19 files and BEIR scifact.zip.
# collection.tar.gz: md5 from the TREC 2019 Deep Learning Track guidelines ("Dataset files: size
# on disk and md5sum", microsoft/TREC-2019-Deep-Learning README); its listed size is rounded to
# disk blocks, so no exact size is stored. qrels.dev.small.tsv: md5 from castorini/docTTTTTquery's
# README (same digest and 143,300 bytes in ir_datasets' mMARCO mirror of the file).
REGISTRY: dict[str, Dataset] = {
    "msmarco-passage": Dataset(
        name="msmarco-passage",
        description="MS MARCO passage ranking v1: 8.8M passages, train/dev queries, qrels, BM25 top-1000 dev, small train triples",
        terms=_MSMARCO_TERMS,
        files=(
            RemoteFile("collection.tar.gz", f"{_MSMARCO}/collection.tar.gz",
                       md5="87dd01826da3e2ad45447ba5af577628", size=None,
                       description="8,841,823 passages (pid \\t passage), ~1 GB compressed",
                       contents=("collection.tsv",), headers=_AZURE),
            RemoteFile("queries.tar.gz", f"{_MSMARCO}/queries.tar.gz",
                       md5="c177b2795d5f2dcc524cf00fcd973be1", size=18882551,
                       description="queries (qid \\t query): train, dev, eval",
                       contents=("queries.train.tsv", "queries.dev.tsv", "queries.eval.tsv")),
            RemoteFile("qrels.dev.small.tsv", f"{_MSMARCO}/qrels.dev.small.tsv",
                       md5="38a80559a561707ac2ec0f150ecd1e8a", size=143300,
                       description="dev.small qrels (6,980 queries; qid 0 pid 1)"),
            RemoteFile("qrels.train.tsv", f"{_MSMARCO}/qrels.train.tsv",
                       md5="733fb9fe12d93e497f7289409316eccf", size=10589532,
                       description="train qrels (532,761 rows)"),
            RemoteFile("top1000.dev.tar.gz", f"{_MSMARCO}/top1000.dev.tar.gz",
                       md5="8c140662bdf123a98fbfe3bb174c5831", size=687414398,
                       description="BM25 top-1000 for the dev queries (qid \\t pid \\t query \\t passage)",
                       contents=("top1000.dev",), headers=_AZURE),
            RemoteFile("triples.train.small.tar.gz", f"{_MSMARCO}/triples.train.small.tar.gz",
                       md5="c13bf99ff23ca691105ad12eab837f84", size=7930881353,
                       description="39.8M training triples (query \\t positive \\t negative), ~7.4 GB compressed",
                       contents=("triples.train.small.tsv",), headers=_AZURE),
        ),
    ),
    "trec-dl-2019": Dataset(
        name="trec-dl-2019",
        description="TREC Deep Learning 2019 passage task: 200 test queries, NIST graded qrels (43 judged), official BM25 top-1000",
        terms=_MSMARCO_TERMS + "; qrels: NIST",
        files=(
            RemoteFile("msmarco-test2019-queries.tsv.gz", f"{_MSMARCO}/msmarco-test2019-queries.tsv.gz",
                       md5="eda71eccbe4d251af83150abe065368c", size=4276,
                       description="200 test queries (qid \\t query), gzip"),
            RemoteFile("2019qrels-pass.txt", "https://trec.nist.gov/data/deep/2019qrels-pass.txt",
                       md5="2f4be390198da108f6845c822e5ada14", size=187092,
                       description="NIST graded passage qrels (qid Q0 pid grade 0-3)"),
            RemoteFile("msmarco-passagetest2019-top1000.tsv.gz", f"{_MSMARCO}/msmarco-passagetest2019-top1000.tsv.gz",
                       md5="ec9e012746aa9763c7ff10b3336a3ce1", size=26634062,
                       description="official BM25 top-1000 with texts (qid \\t pid \\t query \\t passage), gzip"),
        ),
    ),
    "beir-scifact": Dataset(
        name="beir-scifact",
        description="BEIR SciFact: 5,183 abstracts, 1,109 claims, train/test qrels (BEIR layout)",
        terms="SciFact: CC BY-NC 2.0 (research use)",
        files=(
            RemoteFile("scifact.zip", "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip",
                       md5="5f7d1de60b170fc8027bb7898e2efca1", size=2816079,
                       description="BEIR zip: scifact/corpus.jsonl, queries.jsonl, qrels/{train,test}.tsv",
                       contents=("scifact/corpus.jsonl", "scifact/queries.jsonl",
                                 "scifact/qrels/train.tsv", "scifact/qrels/test.tsv")),
        ),
    ),
}


def get_dataset(name: str, registry: Mapping[str, Dataset] | None = None) -> Dataset:
    registry = REGISTRY if registry is None else registry
    try:
        return registry[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(registry))}") from None
