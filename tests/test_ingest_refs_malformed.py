"""Malformed RefCOCO and Flickr30k Entities inputs: one stderr line naming file and field, exit 2, no
traceback.

Each row builds its bad input from the genuine sample (``sample_data/refcoco``, ``sample_data/flickr30k``)
with one thing broken. Hostile rows (a pickle that runs a command, XML entity bombs, external entities,
``../``) must be refused without their payload taking effect. Under ``--on-error skip`` the summary
reconciles exactly.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gtok_cli.cli import app

ROOT = Path(__file__).resolve().parent.parent
RC = ROOT / "sample_data" / "refcoco"
FK = ROOT / "sample_data" / "flickr30k"
IMAGE_ID = "4945942737"
runner = CliRunner()


# -- builders ------------------------------------------------------------------------------------------------
def _refs() -> list[dict[str, Any]]:
    return pickle.loads((RC / "refs(unc).p").read_bytes(), encoding="latin1")  # our own sample: trusted


def _instances() -> dict[str, Any]:
    return json.loads((RC / "instances.json").read_text())


class _RunsCommand:
    """Unpickling this calls os.system(<touch marker>)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class _CallsEval:
    def __reduce__(self) -> tuple[Any, ...]:
        return (eval, ("__import__('os').getcwd()",))


def refcoco_case(
    refs: Callable[[list[dict[str, Any]], Path], Any] | None = None,
    instances: Callable[[dict[str, Any]], None] | None = None,
    raw_refs: Callable[[Path], bytes] | None = None,
    raw_instances: bytes | None = None,
    images: bool = False,
) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        refs_path, inst_path = tmp / "refs(unc).p", tmp / "instances.json"
        if raw_refs is not None:
            refs_path.write_bytes(raw_refs(tmp))
        else:
            data: Any = _refs()
            if refs is not None:
                data = refs(data, tmp) or data
            refs_path.write_bytes(pickle.dumps(data, protocol=2))
        if raw_instances is not None:
            inst_path.write_bytes(raw_instances)
        else:
            inst = _instances()
            if instances is not None:
                instances(inst)
            inst_path.write_text(json.dumps(inst))
        args = ["ingest", "refcoco", "--dataset", "refcoco", "--refs", str(refs_path)]
        args += ["--instances", str(inst_path), "--out", str(tmp / "out.jsonl")]
        if images:
            args += ["--images", str(ROOT / "sample_data" / "coco" / "val2017")]
        return args

    return build


XML = (FK / "Annotations" / f"{IMAGE_ID}.xml").read_text() if (FK / "Annotations").exists() else ""
SENT = (FK / "Sentences" / f"{IMAGE_ID}.txt").read_bytes() if (FK / "Sentences").exists() else b""


def flickr_case(
    xml: str | None = None, sentences: bytes | None = None, images: bool = False, no_xml: bool = False
) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        (tmp / "A").mkdir()
        (tmp / "S").mkdir()
        if not no_xml:
            (tmp / "A" / f"{IMAGE_ID}.xml").write_text(XML if xml is None else xml)
        (tmp / "S" / f"{IMAGE_ID}.txt").write_bytes(SENT if sentences is None else sentences)
        args = ["ingest", "flickr30k", "--annotations", str(tmp / "A"), "--sentences", str(tmp / "S")]
        args += ["--out", str(tmp / "out.jsonl")]
        if images:
            args += ["--images", str(FK / "images")]
        return args

    return build


def _set(ref_index: int, key: str, value: Any) -> Callable[[list[dict[str, Any]], Path], None]:
    def edit(refs: list[dict[str, Any]], _tmp: Path) -> None:
        if value is _DELETE:
            del refs[ref_index][key]
        else:
            refs[ref_index][key] = value

    return edit


_DELETE = object()


def _edit_sentence(key: str, value: Any) -> Callable[[list[dict[str, Any]], Path], None]:
    def edit(refs: list[dict[str, Any]], _tmp: Path) -> None:
        refs[0]["sentences"][1][key] = value

    return edit


def _dup_sent_id(refs: list[dict[str, Any]], _tmp: Path) -> None:
    refs[1]["sentences"][0]["sent_id"] = 0
    refs[1]["sent_ids"][0] = 0


def _edit_ann(ann_id: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(inst: dict[str, Any]) -> None:
        for ann in inst["annotations"]:
            if ann["id"] == ann_id:
                ann.update(changes)

    return edit


def _image_name(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(inst: dict[str, Any]) -> None:
        inst["images"][0]["file_name"] = name

    return edit


def _xml(old: str, new: str) -> str:
    assert old in XML
    return XML.replace(old, new, 1)


BOMB = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10)
    )
    + "]>\n<annotation><filename>&lol9;</filename></annotation>\n"
)
EXTERNAL = (
    '<?xml version="1.0"?>\n<!DOCTYPE annotation [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    "<annotation><filename>&xxe;</filename></annotation>\n"
)
# the first ref of the sample is ref 0 on ann 554513 (image 229358, sentences 0..2)
CASES: list[tuple[str, Callable[[Path], list[str]], str, str]] = [
    # id, build, file named, field named
    (
        "pickle-os-system-proto2",
        refcoco_case(raw_refs=lambda tmp: pickle.dumps([_RunsCommand(tmp / "PWNED")], protocol=2)),
        "refs(unc).p",
        "pickle global",
    ),
    (
        "pickle-os-system-proto0",
        refcoco_case(raw_refs=lambda tmp: pickle.dumps(_RunsCommand(tmp / "PWNED"), protocol=0)),
        "refs(unc).p",
        "pickle global",
    ),
    (
        "pickle-os-system-proto5",
        refcoco_case(raw_refs=lambda tmp: pickle.dumps([_RunsCommand(tmp / "PWNED")], protocol=5)),
        "refs(unc).p",
        "pickle global",
    ),
    (
        "pickle-builtins-eval",
        refcoco_case(raw_refs=lambda tmp: pickle.dumps([_CallsEval()], protocol=2)),
        "refs(unc).p",
        "__builtin__.eval",  # protocol 2 names Python 3's builtins by their Python 2 name
    ),
    (
        "pickle-not-a-list",
        refcoco_case(raw_refs=lambda t: pickle.dumps({"refs": []}, 2)),
        "refs(unc).p",
        "top level",
    ),
    (
        "pickle-truncated",
        refcoco_case(raw_refs=lambda t: pickle.dumps(_refs(), 2)[:100]),
        "refs(unc).p",
        "pickle",
    ),
    ("pickle-empty", refcoco_case(raw_refs=lambda t: b""), "refs(unc).p", "empty"),
    ("ref-missing-ann_id", refcoco_case(refs=_set(0, "ann_id", _DELETE)), "refs(unc).p", "ann_id"),
    ("ref-missing-sentences", refcoco_case(refs=_set(0, "sentences", _DELETE)), "refs(unc).p", "sentences"),
    ("ref-ref_id-str", refcoco_case(refs=_set(0, "ref_id", "0")), "refs(unc).p", "ref_id"),
    ("ref-not-a-dict", refcoco_case(refs=lambda r, t: [["not", "a", "dict"], *r]), "refs(unc).p", "(ref)"),
    ("ref-unknown-ann_id", refcoco_case(refs=_set(0, "ann_id", 999999999)), "refs(unc).p", "ann_id"),
    ("ref-unknown-image_id", refcoco_case(refs=_set(0, "image_id", 12345)), "refs(unc).p", "image_id"),
    ("ref-category-mismatch", refcoco_case(refs=_set(0, "category_id", 3)), "refs(unc).p", "category_id"),
    (
        "ref-suffix-mismatch",
        refcoco_case(refs=_set(0, "file_name", "000000311002_554513.jpg")),
        "refs(unc).p",
        "file_name",
    ),
    (
        "ref-no-suffix",
        refcoco_case(refs=_set(0, "file_name", "000000229358.jpg")),
        "refs(unc).p",
        "file_name",
    ),
    ("ref-unknown-split", refcoco_case(refs=_set(0, "split", "dev")), "refs(unc).p", "split"),
    ("ref-sent_ids-mismatch", refcoco_case(refs=_set(0, "sent_ids", [0, 1])), "refs(unc).p", "sent_ids"),
    ("sentence-duplicate-sent_id", refcoco_case(refs=_dup_sent_id), "refs(unc).p", "sent_id"),
    ("sentence-empty", refcoco_case(refs=_edit_sentence("sent", "  ")), "refs(unc).p", "field sent"),
    ("sentence-not-str", refcoco_case(refs=_edit_sentence("sent", 7)), "refs(unc).p", "field sent"),
    (
        "ann-negative-width",
        refcoco_case(instances=_edit_ann(554513, bbox=[464.46, 0.0, -5.0, 423.0])),
        "instances.json",
        "bbox",
    ),
    (
        "ann-nan-box-is-invalid-json",
        refcoco_case(instances=_edit_ann(554513, bbox=[float("nan"), 0, 10, 10])),
        "instances.json",
        "not valid JSON",
    ),
    (
        "ann-box-strings",
        refcoco_case(instances=_edit_ann(554513, bbox=["464", 0, 10, 10])),
        "instances.json",
        "bbox",
    ),
    (
        "ann-2-point-polygon",
        refcoco_case(instances=_edit_ann(554513, segmentation=[[1, 2, 3, 4]])),
        "instances.json",
        "segmentation",
    ),
    (
        "ann-rle-size-mismatch",
        refcoco_case(instances=_edit_ann(554513, segmentation={"size": [10, 10], "counts": [100]})),
        "instances.json",
        "segmentation",
    ),
    ("instances-truncated", refcoco_case(raw_instances=b'{"images": ['), "instances.json", "JSON"),
    ("instances-empty", refcoco_case(raw_instances=b""), "instances.json", "empty"),
    (
        "instances-no-annotations",
        refcoco_case(raw_instances=b'{"images": [], "categories": []}'),
        "instances.json",
        "annotations",
    ),
    (
        "image-dotdot-with-images",
        refcoco_case(instances=_image_name("../secret.jpg"), images=True),
        "instances.json",
        "file_name",
    ),
    ("xml-entity-bomb", flickr_case(xml=BOMB), f"{IMAGE_ID}.xml", "DOCTYPE"),
    ("xml-external-entity", flickr_case(xml=EXTERNAL), f"{IMAGE_ID}.xml", "DOCTYPE"),
    ("xml-malformed", flickr_case(xml=XML[:200]), f"{IMAGE_ID}.xml", "well-formed"),
    ("xml-empty", flickr_case(xml=""), f"{IMAGE_ID}.xml", "empty"),
    ("xml-missing", flickr_case(no_xml=True), f"{IMAGE_ID}.xml", "not found"),
    (
        "xml-xmax-lt-xmin",
        flickr_case(xml=_xml("<xmax>287</xmax>", "<xmax>100</xmax>")),
        f"{IMAGE_ID}.xml",
        "bndbox",
    ),
    (
        "xml-box-outside",
        flickr_case(xml=_xml("<xmax>287</xmax>", "<xmax>400</xmax>")),
        f"{IMAGE_ID}.xml",
        "bndbox",
    ),
    ("xml-missing-ymax", flickr_case(xml=_xml("<ymax>376</ymax>", "")), f"{IMAGE_ID}.xml", "bndbox/ymax"),
    (
        "xml-float-coordinate",
        flickr_case(xml=_xml("<xmin>107</xmin>", "<xmin>107.5</xmin>")),
        f"{IMAGE_ID}.xml",
        "bndbox/xmin",
    ),
    (
        "xml-missing-size",
        flickr_case(
            xml=_xml(
                "<size>\n\t\t<width>333</width>\n\t\t<height>500</height>\n\t\t<depth>3</depth>\n\t</size>",
                "",
            )
        ),
        f"{IMAGE_ID}.xml",
        "size",
    ),
    (
        "xml-width-not-int",
        flickr_case(xml=_xml("<width>333</width>", "<width>wide</width>")),
        f"{IMAGE_ID}.xml",
        "size/width",
    ),
    (
        "xml-object-no-name",
        flickr_case(xml=_xml("<name>221796</name>", "")),
        f"{IMAGE_ID}.xml",
        "object/name",
    ),
    (
        "xml-filename-dotdot",
        flickr_case(xml=_xml("<filename>4945942737.jpg", "<filename>../4945942737.jpg"), images=True),
        f"{IMAGE_ID}.xml",
        "filename",
    ),
    (
        "xml-size-disagrees-with-image",
        flickr_case(xml=_xml("<width>333</width>", "<width>334</width>"), images=True),
        f"{IMAGE_ID}.xml",
        "width/height",
    ),
    (
        "sentence-unclosed-bracket",
        flickr_case(sentences=b"[/EN#221796/people A girl sits .\n"),
        f"{IMAGE_ID}.txt",
        "sentence",
    ),
    ("sentence-stray-bracket", flickr_case(sentences=b"A girl] sits .\n"), f"{IMAGE_ID}.txt", "sentence"),
    (
        "sentence-bad-header",
        flickr_case(sentences=b"[/EN#abc/people A girl] sits .\n"),
        f"{IMAGE_ID}.txt",
        "sentence",
    ),
    (
        "sentence-non-utf8",
        flickr_case(sentences=b"[/EN#221796/people A gir\xe9] sits .\n"),
        f"{IMAGE_ID}.txt",
        "byte 24",
    ),
    ("sentence-file-empty", flickr_case(sentences=b""), f"{IMAGE_ID}.txt", "empty"),
]


@pytest.mark.parametrize(
    ("build", "file_named", "field_named"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_gives_one_line_and_exit_2(
    tmp_path: Path, build: Callable[[Path], list[str]], file_named: str, field_named: str
) -> None:
    result = runner.invoke(app, build(tmp_path))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gtok: error: ")
    assert file_named in lines[0] and field_named in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "PWNED").exists()  # the payload never ran
    assert not (tmp_path / "out.jsonl").exists()  # nothing half-written under the final name


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_payload_did_not_run_even_under_skip(tmp_path: Path) -> None:
    build = refcoco_case(raw_refs=lambda tmp: pickle.dumps([_RunsCommand(tmp / "PWNED")], protocol=2))
    args = [*build(tmp_path), "--on-error", "skip"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "system" in result.stderr and "pickle global" in result.stderr
    assert not (tmp_path / "PWNED").exists()


def test_refcoco_skip_reconciles(tmp_path: Path) -> None:
    def edit(refs: list[dict[str, Any]], _tmp: Path) -> None:
        refs[0]["ann_id"] = 999999999  # ref 0: its 3 sentences rejected
        refs[1]["sentences"][1]["sent"] = ""  # ref 1 (2 sentences): 1 rejected
        refs[3]["sentences"][0]["sent_id"] = 9  # ref 3's sent 6 becomes 9, which ref 4 has too
        refs[3]["sent_ids"][0] = 9

    rejects = str(tmp_path / "rej.jsonl")
    args = [*refcoco_case(refs=edit)(tmp_path), "--on-error", "skip", "--rejects", rejects]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # sample: 12 refs, 22 sentences. By hand: ref 0 rejected (one line; its 3 sentences excluded with it),
    # 1 empty sentence and ref 4's sent 9 (after ref 3's) rejected alone: 17 written
    assert (summary["written"], summary["rejected"], summary["reconciles"]) == (17, 3, True)
    units = {k: (u["read"], u["kept"], u["excluded"], u["rejected"]) for k, u in summary["units"].items()}
    assert units == {"refs": (12, 11, 0, 1), "sentences": (22, 17, 3, 2)}
    assert summary["units"]["sentences"]["excluded_by_reason"] == {"ref.rejected": 3}
    rejected = [json.loads(line) for line in (tmp_path / "rej.jsonl").read_text().splitlines()]
    assert sorted((r["item"], r["reason"]) for r in rejected) == [
        ("ref", "ref.unknown_ann"),
        ("sentence", "sentence.duplicate"),
        ("sentence", "sentence.empty"),
    ]
    assert all(r["file"] and r["record"] and r["field"] and "ref_id" in r for r in rejected)
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 17


def test_flickr30k_skip_reconciles(tmp_path: Path) -> None:
    args = flickr_case()(tmp_path)
    ann_dir, sent_dir = tmp_path / "A", tmp_path / "S"
    # a second image whose XML is a bomb (its 2 captions rejected), a third with one bad caption of 2
    (ann_dir / "2.xml").write_text(BOMB)
    (sent_dir / "2.txt").write_text("[/EN#1/people A man] .\n[/EN#1/people He] runs .\n")
    (ann_dir / "3.xml").write_text(
        "<annotation><size><width>10</width><height>10</height></size><object><name>1</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>"
    )
    (sent_dir / "3.txt").write_text("[/EN#1/people A dog] sits .\n[/EN#1/people unclosed .\n")
    result = runner.invoke(app, [*args, "--on-error", "skip", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # by hand: image 4945942737: 5 captions written (18 phrases: 11 boxed, 7 no_box, 7 objects); image 2: its
    # XML rejected (one line), its 2 captions excluded with it; image 3: 1 caption written (1 phrase, 1
    # object), 1 rejected
    assert (summary["written"], summary["rejected"], summary["reconciles"]) == (6, 2, True)
    assert summary["rejected_by_reason"] == {"sentence.brackets": 1, "xml.entity": 1}
    units = {k: (u["read"], u["kept"], u["excluded"], u["rejected"]) for k, u in summary["units"].items()}
    assert units == {
        "images": (3, 2, 0, 1),
        "captions": (9, 6, 2, 1),
        "objects": (8, 8, 0, 0),
        "phrases": (19, 12, 7, 0),
    }
    rejects_file = tmp_path / "out.jsonl.rejects.jsonl"
    assert len(rejects_file.read_text().splitlines()) == 2


def test_sample_dirs_exist() -> None:
    # the table builds on these; without them every row above would test nothing
    assert XML and SENT
    assert shutil.which("touch")  # the pickle payload's command exists, so "did not run" means refused
