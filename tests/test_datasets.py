"""Dataset readers on small files written here in each real published layout, and every refusal."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import REALBENCH

from tiermem.datasets import (
    Dataset,
    load_plain_pickle,
    read_captions_csv,
    read_dataset,
    read_generic_csv,
    read_mediaeval2021,
    read_memento10k,
    read_realbench,
    read_split_pickle,
    read_videomem,
    score_kind,
)
from tiermem.errors import DatasetError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def raises(match: str):
    return pytest.raises(DatasetError, match=match)


# -- Memento10k, authors' JSON release --------------------------------------------------------


def memento_entry(name: str, score: float | None = 0.8, **extra) -> dict:
    entry = {
        "filename": name,
        "url": f"https://example.org/{name}",
        "captions": [f"{name} one", f"{name} two"],
    }
    if score is not None:
        entry["mem_score"] = score
    return {**entry, **extra}


def write_memento(root: Path, train=None, val=None, test=None) -> Path:
    for split, entries in (("train", train), ("val", val), ("test", test)):
        if entries is not None:
            write(root / f"memento_{split}_data.json", json.dumps(entries))
    return root


def test_memento10k_reads_every_split_and_withholds_test_scores(tmp_path):
    root = write_memento(
        tmp_path,
        train=[memento_entry("a.mp4", 0.9, alpha=-0.002), memento_entry("b.mp4", 0.5, alpha=0.001)],
        val=[memento_entry("c.mp4", 0.7, alpha=0.0)],
        test=[memento_entry("d.mp4", None)],
    )
    ds = read_memento10k(root)
    assert ds.ids == ["a", "b", "c", "d"]
    assert ds.split == ["train", "train", "val", "test"]
    assert ds.targets == ["mem_score", "alpha"]
    np.testing.assert_allclose(ds.target("mem_score")[:3], [0.9, 0.5, 0.7])
    assert np.isnan(ds.target("mem_score")[3])
    assert ds.captions[1] == ["b.mp4 one", "b.mp4 two"]
    assert ds.paths is None  # no videos/ folder: none expected
    assert ds.labelled("mem_score").ids == ["a", "b", "c"]
    assert ds.subset("val").ids == ["c"]
    frame = ds.labels_frame()
    assert list(frame.columns) == ["video_id", "mem_score", "alpha", "split"]


def test_memento10k_videos_found_and_missing(tmp_path):
    root = write_memento(tmp_path, train=[memento_entry("a.mp4"), memento_entry("b.mp4")])
    (root / "videos").mkdir()
    (root / "videos" / "a.mp4").write_bytes(b"x")
    with raises(r"video b: file .*videos/b\.mp4 not found"):
        read_memento10k(root)
    (root / "videos" / "b.mp4").write_bytes(b"x")
    assert read_memento10k(root).paths == [str(root / "videos" / "a.mp4"), str(root / "videos" / "b.mp4")]
    assert read_memento10k(root, videos=False).paths is None


def test_memento10k_videos_required_but_no_folder(tmp_path):
    root = write_memento(tmp_path, train=[memento_entry("a.mp4")])
    with raises("video directory not found"):
        read_memento10k(root, videos=True)


@pytest.mark.parametrize(
    "entries, message",
    [
        (
            [memento_entry("a.mp4", 1.2)],
            r"memento_train_data\.json: entry 0 \(a\.mp4\): mem_score = 1\.2 is outside \[0, 1\]",
        ),
        ([memento_entry("a.mp4", "high")], r"entry 0 \(a\.mp4\): mem_score is not a number"),
        ([memento_entry("a.mp4", None)], r"entry 0 \(a\.mp4\): missing 'mem_score'"),
        ([{"url": "x"}], r"memento_train_data\.json: entry 0: missing 'filename'"),
        ([memento_entry("a.mp4"), memento_entry("a.mp4")], r"entry 1 \(a\.mp4\): duplicate video 'a'"),
        ([memento_entry("a.mp4", captions="one caption")], r"'captions' is not a list"),
        ([memento_entry("a.mp4", captions=["ok", 3])], r"entry 0 \(a\.mp4\): caption is not text"),
        ([[1, 2]], r"entry 0: not a JSON object"),
    ],
)
def test_memento10k_refuses_bad_entries(tmp_path, entries, message):
    write_memento(tmp_path, train=entries)
    with raises(message):
        read_memento10k(tmp_path)


def test_memento10k_refuses_broken_json_and_empty_folder(tmp_path):
    with raises("no memento_"):
        read_memento10k(tmp_path)
    write(tmp_path / "memento_train_data.json", '[{"filename": "a.mp4",')
    with raises(r"memento_train_data\.json: not valid JSON"):
        read_memento10k(tmp_path)
    write(tmp_path / "memento_train_data.json", '{"filename": "a.mp4"}')
    with raises("expected a JSON list"):
        read_memento10k(tmp_path)


def test_memento10k_duplicate_across_splits(tmp_path):
    write_memento(tmp_path, train=[memento_entry("a.mp4")], val=[memento_entry("a.mp4")])
    with raises(
        r"memento_val_data\.json: entry 0 \(a\.mp4\): duplicate video 'a' \(first in memento_train_data"
    ):
        read_memento10k(tmp_path)


# -- MediaEval 2021 CSVs (Memento10k and TRECVid subsets) -------------------------------------

ME21_HEADER = "video_id,video_url,annotations_short_term,scores_raw_short_term,scores_normalized_short_term,decay_alpha\n"


def write_me21_memento(root: Path) -> Path:
    write(
        root / "training_set" / "train_scores.csv",
        ME21_HEADER + "17,http://x/17,92,0.989,0.9891,-0.0004\n3628,http://x/3628,91,0.912,0.9134,0.0004\n",
    )
    write(
        root / "training_set" / "train_text_descriptions.csv",
        'video_id,description_0,description_1\n17,A girl looks away.,A girl with brown hair.\n3628,A woman sings.,"A woman, singing"\n',
    )
    write(root / "dev_set" / "dev_scores.csv", ME21_HEADER + "5,http://x/5,80,0.5,0.52,-0.001\n")
    write(root / "test_set" / "test_video_urls.csv", "video_id,video_url\n9,http://x/9\n")
    return root


def test_mediaeval2021_memento_layout(tmp_path):
    ds = read_mediaeval2021(write_me21_memento(tmp_path))
    assert ds.ids == ["17", "3628", "5", "9"]
    assert ds.split == ["train", "train", "dev", "test"]
    assert ds.targets == [
        "scores_normalized_short_term",
        "scores_raw_short_term",
        "annotations_short_term",
        "decay_alpha",
    ]
    np.testing.assert_allclose(ds.target("scores_normalized_short_term")[:3], [0.9891, 0.9134, 0.52])
    assert np.isnan(ds.target("scores_raw_short_term")[3])
    assert ds.captions[:2] == [
        ["A girl looks away.", "A girl with brown hair."],
        ["A woman sings.", "A woman, singing"],
    ]
    assert ds.captions[2] == []  # dev folder has no descriptions file


def test_mediaeval2021_trecvid_long_descriptions_and_videos(tmp_path):
    header = ME21_HEADER.strip() + ",annotations_long_term,scores_raw_long_term\n"
    write(
        tmp_path / "train_set" / "train_scores.csv",
        header + "8,u,20,0.75,0.76,-0.01,7,0.57\n26,u,23,0.87,0.88,0.0,7,0.43\n",
    )
    write(
        tmp_path / "train_set" / "train_text_descriptions.csv",
        "video_id,description\n8,a cat\n26,a dog\n8,a kitten\n",
    )
    vids = tmp_path / "train_set" / "Videos"
    vids.mkdir()
    (vids / "00008.mp4").write_bytes(b"x")
    with raises(r"video 26: file .*Videos/00026\.mp4 not found"):
        read_mediaeval2021(tmp_path)
    (vids / "00026.mp4").write_bytes(b"x")
    ds = read_mediaeval2021(tmp_path, name="trecvid2021")
    assert ds.name == "trecvid2021"
    assert ds.captions == [["a cat", "a kitten"], ["a dog"]]
    assert "scores_raw_long_term" in ds.targets and "annotations_long_term" in ds.targets
    assert ds.paths == [str(vids / "00008.mp4"), str(vids / "00026.mp4")]


def test_mediaeval2021_single_scores_file(tmp_path):
    root = write_me21_memento(tmp_path)
    ds = read_mediaeval2021(root / "dev_set" / "dev_scores.csv")
    assert ds.ids == ["5"] and ds.split == ["dev"]


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "video_id,scores_raw_short_term\n1,0.5\n",
            r"train_scores\.csv: missing column\(s\) scores_normalized_short_term",
        ),
        (
            ME21_HEADER + "1,u,10,0.5,abc,0\n",
            r"train_scores\.csv: row 2: scores_normalized_short_term is not a number \('abc'\)",
        ),
        (
            ME21_HEADER + "1,u,10,0.5,0.5,0\n2,u,10,1.5,0.5,0\n",
            r"row 3: scores_raw_short_term = 1\.5 is outside \[0, 1\]",
        ),
        (
            ME21_HEADER + "1,u,10,0.5,0.5,0\n1,u,10,0.5,0.5,0\n",
            r"row 3: duplicate video_id '1' \(first at row 2\)",
        ),
        (
            ME21_HEADER + "1,u,-3,0.5,0.5,0\n",
            r"row 2: annotations_short_term = -3\.0 is not a non-negative whole count",
        ),
        (ME21_HEADER + "1,u,10,,0.5,0\n", r"row 2: empty scores_raw_short_term"),
        (ME21_HEADER + ",u,10,0.5,0.5,0\n", r"row 2: empty video_id"),
    ],
)
def test_mediaeval2021_refusals(tmp_path, body, message):
    write(tmp_path / "train_set" / "train_scores.csv", body)
    with raises(message):
        read_mediaeval2021(tmp_path)


def test_mediaeval2021_descriptions_of_unknown_video(tmp_path):
    write(tmp_path / "train_set" / "train_scores.csv", ME21_HEADER + "1,u,10,0.5,0.5,0\n")
    write(tmp_path / "train_set" / "train_text_descriptions.csv", "video_id,description\n1,a\n2,b\n")
    with raises(r"train_text_descriptions\.csv: video '2' is not in the train split"):
        read_mediaeval2021(tmp_path)


# -- VideoMem / MediaEval 2018-2019 ---------------------------------------------------------

GT_HEADER = "video,short-term_memorability,nb_short-term_annotations,long-term_memorability,nb_long-term_annotations\n"


def write_videomem(
    root: Path,
    rows: str = "video10.webm,0.95,34,0.9,10\nvideo100.webm,0.951,33,0.889,9\nvideo7.webm,0.8,40,0.7,12\n",
) -> Path:
    return write(root / "ground-truth_dev-set.csv", GT_HEADER + rows)


def test_videomem_ground_truth_with_m3s_split_pickle(tmp_path):
    write_videomem(tmp_path)
    with open(tmp_path / "train_test_split_videomem.pkl", "wb") as f:
        pickle.dump((["video10.webm", "video7.webm"], ["video100.webm"]), f)
    ds = read_videomem(tmp_path)
    assert ds.ids == ["video10", "video100", "video7"]
    assert ds.split == ["train", "val", "train"]
    assert ds.targets == list(
        (
            "short-term_memorability",
            "nb_short-term_annotations",
            "long-term_memorability",
            "nb_long-term_annotations",
        )
    )
    np.testing.assert_allclose(ds.target("long-term_memorability"), [0.9, 0.889, 0.7])


def test_videomem_mediaeval2018_layout_captions_and_sources(tmp_path):
    dev = tmp_path / "dev-set"
    write_videomem(dev / "ground-truth", "video10.webm,0.95,34,0.9,10\nvideo3.webm,0.6,30,0.5,9\n")
    write(
        dev / "dev-set_video-captions.txt",
        "video10.webm blonde-woman-is-massaged-tilt-down\nvideo3.webm\tcouple-relaxing-on-picnic\n",
    )
    (dev / "sources").mkdir()
    for n in ("video10.webm", "video3.webm"):
        (dev / "sources" / n).write_bytes(b"x")
    ds = read_dataset("videomem", dev)
    assert ds.captions == [["blonde woman is massaged tilt down"], ["couple relaxing on picnic"]]
    assert ds.paths == [str(dev / "sources" / "video10.webm"), str(dev / "sources" / "video3.webm")]
    assert ds.split is None


def test_videomem_m3s_mp4_reencodes_and_missing_video(tmp_path):
    write_videomem(tmp_path, "video10.webm,0.95,34,0.9,10\nvideo3.webm,0.6,30,0.5,9\n")
    (tmp_path / "resized_mp4").mkdir()
    (tmp_path / "resized_mp4" / "video10.mp4").write_bytes(b"x")
    with raises(r"video video3: file .*resized_mp4/video3\.webm not found"):
        read_videomem(tmp_path)
    (tmp_path / "resized_mp4" / "video3.mp4").write_bytes(b"x")
    assert read_videomem(tmp_path).paths[1].endswith("resized_mp4/video3.mp4")


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            "video10.webm,0.95,34,0.9,10\nvideo10.webm,0.9,30,0.9,10\n",
            r"row 3: duplicate video 'video10\.webm'",
        ),
        ("video10.webm,-0.1,34,0.9,10\n", r"row 2: short-term_memorability = -0\.1 is outside \[0, 1\]"),
        (
            "video10.webm,0.9,34.5,0.9,10\n",
            r"row 2: nb_short-term_annotations = 34\.5 is not a non-negative whole count",
        ),
        ("video10.webm,0.9,34,n/a,10\n", r"row 2: long-term_memorability is not a number \('n/a'\)"),
        (
            "video10.webm,0.9,34,0.9,10\nvideo10.mp4,0.9,34,0.9,10\n",
            r"two files share the video id 'video10'",
        ),
    ],
)
def test_videomem_refusals(tmp_path, rows, message):
    write_videomem(tmp_path, rows)
    with raises(message):
        read_videomem(tmp_path)


def test_videomem_missing_column_and_file(tmp_path):
    with raises("no ground-truth_dev-set.csv found"):
        read_videomem(tmp_path)
    write(tmp_path / "ground-truth_dev-set.csv", "video,long-term_memorability\nvideo1.webm,0.5\n")
    with raises(r"ground-truth_dev-set\.csv: missing column\(s\) short-term_memorability"):
        read_videomem(tmp_path)


def test_videomem_split_and_captions_must_name_known_videos(tmp_path):
    write_videomem(tmp_path)
    with open(tmp_path / "train_test_split_videomem.pkl", "wb") as f:
        pickle.dump((["video10.webm", "video999.webm"], []), f)
    with raises(r"split 'train' lists 'video999\.webm', which the ground truth does not have"):
        read_videomem(tmp_path)
    with open(tmp_path / "train_test_split_videomem.pkl", "wb") as f:
        pickle.dump((["video10.webm"], ["video10.webm"]), f)
    with raises(r"'video10\.webm' is in both split 'train' and 'val'"):
        read_videomem(tmp_path)
    (tmp_path / "train_test_split_videomem.pkl").unlink()
    write(tmp_path / "dev-set_video-captions.txt", "video10.webm a-b\nvideo5.webm c-d\n")
    with raises(r"dev-set_video-captions\.txt: line 2: video 'video5\.webm' is not in the ground truth"):
        read_videomem(tmp_path)


# -- the split pickle: names only, never code --------------------------------------------------


class Boom:
    """Unpickling this would call os.system: the reader must refuse before anything runs."""

    def __reduce__(self):
        import os

        return (os.system, (f"touch {Boom.marker}",))


def test_split_pickle_refuses_code_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    Boom.marker = marker
    for protocol in (0, 2, 4, 5):
        path = tmp_path / f"evil{protocol}.pkl"
        path.write_bytes(pickle.dumps((["video1.webm"], [Boom()]), protocol=protocol))
        with raises(r"refused: byte \d+ holds pickle opcode (GLOBAL|STACK_GLOBAL)"):
            load_plain_pickle(path)
    assert not marker.exists()


def test_split_pickle_refuses_arrays_and_other_objects(tmp_path):
    path = tmp_path / "arrays.pkl"
    path.write_bytes(pickle.dumps((np.array(["video1.webm"]), np.array(["video2.webm"]))))
    with raises("refused"):
        read_split_pickle(path)
    path.write_bytes(pickle.dumps({"train": {"video1.webm"}}))  # a set: not a list of names
    with raises("refused: byte .* EMPTY_SET"):
        read_split_pickle(path)
    path.write_bytes(pickle.dumps((["video1.webm", 3.5], [])))
    with raises("refused: byte .* BINFLOAT"):
        read_split_pickle(path)
    path.write_bytes(pickle.dumps((["video1.webm", 3], [])))
    with raises(r"split 'train' holds 3, not a video name"):
        read_split_pickle(path)
    path.write_bytes(pickle.dumps((["video1.webm"], [None])))
    with raises(r"split 'val' holds None, not a video name"):
        read_split_pickle(path)
    path.write_bytes(b"not a pickle at all")
    with raises("not a readable pickle"):
        read_split_pickle(path)


def test_split_pickle_accepts_plain_names(tmp_path):
    path = tmp_path / "split.pkl"
    for protocol in (0, 2, 5):
        path.write_bytes(pickle.dumps((["video1.webm", "video2.webm"], ["video3.webm"]), protocol=protocol))
        assert read_split_pickle(path) == {"train": ["video1.webm", "video2.webm"], "val": ["video3.webm"]}
    path.write_bytes(pickle.dumps({"train": ["a"], "test": ["b"]}))
    assert read_split_pickle(path) == {"train": ["a"], "test": ["b"]}


# -- generic CSV ------------------------------------------------------------------------------


def test_generic_csv_with_ids_and_named_score(tmp_path):
    csv = write(
        tmp_path / "labels.csv", "video_id,mem,caption,fold\nv1,0.5,a cat,train\nv2,0.75,a dog,test\n"
    )
    ds = read_generic_csv(csv, "mem", caption_columns=["caption"], split_column="fold")
    assert ds.ids == ["v1", "v2"] and ds.targets == ["mem"]
    assert ds.captions == [["a cat"], ["a dog"]] and ds.split == ["train", "test"]
    np.testing.assert_allclose(ds.target("mem"), [0.5, 0.75])


def test_generic_csv_with_paths(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "x.mp4").write_bytes(b"x")
    csv = write(tmp_path / "labels.csv", "path,score\nclips/x.mp4,0.3\nclips/y.mp4,0.4\n")
    with raises(r"labels\.csv: row 3: video file .*clips/y\.mp4 not found"):
        read_generic_csv(csv, "score")
    (tmp_path / "clips" / "y.mp4").write_bytes(b"x")
    ds = read_generic_csv(csv, "score")
    assert ds.ids == ["x", "y"] and ds.paths == [
        str(tmp_path / "clips" / "x.mp4"),
        str(tmp_path / "clips" / "y.mp4"),
    ]


def test_generic_csv_with_video_dir(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.webm").write_bytes(b"x")
    csv = write(tmp_path / "labels.csv", "video_id,score\na,0.3\nb,0.4\n")
    with raises(r"video b: file .*v/b\.mp4 not found"):
        read_generic_csv(csv, "score", video_dir=tmp_path / "v")
    (tmp_path / "v" / "b.mp4").write_bytes(b"x")
    assert read_generic_csv(csv, "score", video_dir=tmp_path / "v").paths[0].endswith("a.webm")


@pytest.mark.parametrize(
    "body, score, message",
    [
        ("name,score\na,0.3\n", "score", r"missing column video_id \(or path\)"),
        ("video_id,score\na,0.3\n", "mem", r"missing column\(s\) mem"),
        ("video_id,score\na,0.3\na,0.4\n", "score", r"row 3: duplicate video_id 'a'"),
        ("video_id,score\na,1e308\n", "score", r"row 2: score = 1e\+308 is out of range"),
        ("video_id,score\na,inf\n", "score", r"row 2: score is not finite"),
        ("video_id,score\na,\n", "score", r"row 2: empty score"),
    ],
)
def test_generic_csv_refusals(tmp_path, body, score, message):
    csv = write(tmp_path / "labels.csv", body)
    with raises(message):
        read_generic_csv(csv, score)


def test_generic_csv_missing_scores_allowed_on_request(tmp_path):
    csv = write(tmp_path / "labels.csv", "video_id,score\na,0.3\nb,\n")
    ds = read_generic_csv(csv, "score", allow_missing=True)
    assert np.isnan(ds.target("score")[1]) and ds.labelled("score").ids == ["a"]


def test_unreadable_csv_and_unknown_layout(tmp_path):
    with raises(r"labels\.csv: file not found"):
        read_generic_csv(tmp_path / "labels.csv", "score")
    write(tmp_path / "bad.csv", 'video_id,score\n"a,0.3\n')
    with raises(r"bad\.csv: not a readable CSV"):
        read_generic_csv(tmp_path / "bad.csv", "score")
    with raises("unknown dataset layout 'lamem'"):
        read_dataset("lamem", tmp_path)


# -- captions tables ----------------------------------------------------------------------------


def test_captions_csv_layouts(tmp_path):
    wide = write(tmp_path / "wide.csv", "video_id,description_1,description_0\n7,second,first\n8,only,\n")
    assert read_captions_csv(wide) == {"7": ["first", "second"], "8": ["only"]}
    long = write(tmp_path / "long.csv", "video_id,description\n7,a\n8,b\n7,c\n")
    assert read_captions_csv(long) == {"7": ["a", "c"], "8": ["b"]}
    titles = write(tmp_path / "titles.csv", "video_id,title\nvideo1,owl in tree\nvideo2,1984\n")
    assert read_captions_csv(titles) == {"video1": ["owl in tree"], "video2": ["1984"]}
    with raises(r"titles2\.csv: row 3: duplicate video_id 'video1'"):
        read_captions_csv(write(tmp_path / "titles2.csv", "video_id,title\nvideo1,a\nvideo1,b\n"))
    with raises(r"empty\.csv: video '8' has no non-empty caption"):
        read_captions_csv(write(tmp_path / "empty.csv", "video_id,description_0\n7,a\n8,\n"))
    with raises(r"nocap\.csv: no caption column"):
        read_captions_csv(write(tmp_path / "nocap.csv", "video_id,score\n7,0.5\n"))


# -- realbench ----------------------------------------------------------------------------------


def test_realbench_layout_written_here(tmp_path):
    write(tmp_path / "labels_train.csv", "video_id,short_term,n_short_term\nv1,0.9,30\nv2,0.8,31\n")
    write(tmp_path / "ids_test.csv", "video_id\nv3\n")
    write(tmp_path / "titles.csv", "video_id,title\nv1,a\nv2,b\nv3,c\n")
    (tmp_path / "features_coco.parquet").write_bytes(b"")
    ds = read_realbench(tmp_path)
    assert ds.ids == ["v1", "v2", "v3"] and ds.split == ["train", "train", "test"]
    assert np.isnan(ds.target("short_term")[2]) and ds.captions[2] == ["c"]
    assert ds.tables == {"coco": tmp_path / "features_coco.parquet"}
    write(tmp_path / "ids_test.csv", "video_id\nv2\n")
    with raises(r"ids_test\.csv: video 'v2' is also in labels_train\.csv"):
        read_realbench(tmp_path)
    write(tmp_path / "ids_test.csv", "video_id\nv4\n")
    with raises(r"titles\.csv: no caption for video 'v4'"):
        read_realbench(tmp_path)


@pytest.mark.realbench
@pytest.mark.skipif(
    not REALBENCH.is_dir(), reason=f"{REALBENCH} (real MediaEval labels) is not on this machine"
)
def test_realbench_real_sets():
    m = read_realbench(REALBENCH / "memento10k")
    assert len(m.subset("train")) == 7000 and len(m.subset("test")) == 1500
    assert all(len(c) == 5 for c in m.captions)
    y = m.labelled("scores_normalized_short_term").target("scores_normalized_short_term")
    assert y.size == 7000 and 0.4 < y.min() and y.max() <= 1.0
    v = read_realbench(REALBENCH / "videomem")
    assert set(v.tables) == {"coco80_rn152", "coco80_rn101"} and len(v.subset("test")) == 2000
    assert v.captions[0] == ["couple relaxing on picnic crane shot"]
    t = read_realbench(REALBENCH / "trecvid2020")
    assert t.captions is None and len(t.labelled("short_term")) == 442


def test_score_kinds_and_dataset_consistency():
    assert [score_kind(c) for c in ("short_term", "nb_short-term_annotations", "annotations_short_term", "decay_alpha", "n_long_term")] == [
        "memorability", "count", "count", "rate", "count",
    ]  # fmt: skip
    import pandas as pd

    from tiermem.errors import DataMismatchError

    with pytest.raises(DataMismatchError, match=re.escape("duplicate video ids ['a']")):
        Dataset("x", ["a", "a"], pd.DataFrame({"s": [0.1, 0.2]}, index=["a", "a"]))
    with pytest.raises(DataMismatchError, match="1 captions for 2 videos"):
        Dataset("x", ["a", "b"], pd.DataFrame({"s": [0.1, 0.2]}, index=["a", "b"]), captions=[["c"]])
