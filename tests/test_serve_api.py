"""The HTTP API against the real app: real worker processes scoring real sample clips with the
fitted plumbing model (invented labels), FastAPI's test client as the caller.

Apps built without entering their lifespan start no worker: their jobs stay queued, which is
what the limit tests need (a full queue, refusals before any scoring).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi", reason="the service needs the serve extra: pip install 'tiermem[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from tiermem.cli import app as cli_app  # noqa: E402
from tiermem.errors import TiermemError  # noqa: E402
from tiermem.serve.app import create_app  # noqa: E402
from tiermem.serve.settings import ServeSettings  # noqa: E402
from tiermem.video.samples import make_long_video  # noqa: E402

#: Where the test client says it calls: a name the server answers for (the Host check).
LOCAL = "http://127.0.0.1:8000"
#: Seconds a job of the plumbing model may take (a clip scores in about 2 s here).
JOB_TIMEOUT_S = 180


def wait_done(client: TestClient, job_id: str, timeout: float = JOB_TIMEOUT_S) -> dict[str, Any]:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not finished after {timeout} s: {job}")


def upload(client: TestClient, *paths: Path, **form: str) -> Any:
    return client.post(
        "/v1/jobs", files=[("file", (p.name, p.read_bytes(), "video/mp4")) for p in paths], data=form
    )


@pytest.fixture(scope="module")
def model(fitted: tuple[Any, Path, Path]) -> Path:
    return fitted[1]


@pytest.fixture(scope="module")
def served(
    model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, ServeSettings]]:
    """The app with one real worker process, for the module."""
    settings = ServeSettings(model=str(model), data=str(tmp_path_factory.mktemp("serve_data")), workers=1)
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        yield client, settings


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample videos joined into 8 s of 160x90: long enough for a timeline of 3-s windows."""
    return make_long_video(tmp_path_factory.mktemp("serve_long") / "joined.mp4", seconds=8, size=(160, 90))


def test_health_and_model_card(served, fitted) -> None:
    client, _ = served
    pipe = fitted[0]
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["workers"] == 1
    deadline = time.monotonic() + 60
    while (card := client.get("/v1/model")).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.3)  # the worker is still loading the model
    assert card.status_code == 200
    card = card.json()
    val = pipe.evaluation.metrics["val"]
    assert card["kind"] == "fitted pipeline"
    assert card["trained_on"] == {
        "dataset": "memento10k",
        "target": "mem_score",
        "videos": 15,
        "clip_seconds": 3.0,
        "refitted": False,  # the fixture's pipeline is fitted through the API, without refit
    }
    assert card["validation"]["spearman"] == pytest.approx(val["spearman"])
    assert card["validation"]["spearman_95ci"] == pytest.approx([val["spearman_lo"], val["spearman_hi"]])
    assert card["validation"]["best_epoch_on_val"]["label"] == "optimistic (paper protocol)"
    assert card["tiers"] == ["low", "mid"] and card["window_seconds"] == 3.0
    assert "Apache-2.0" in card["licences"]["mid"] and "MIT" in card["licences"]["mid"]
    assert "/v1/jobs" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_a_clip_scores_as_predict_json_says(served, model: Path, sample_clip_paths: list[Path]) -> None:
    client, _ = served
    clip = sample_clip_paths[1]
    answer = upload(client, clip, timeline="false")
    assert answer.status_code == 202
    (job,) = answer.json()["jobs"]
    assert job["status"] in ("queued", "running") and job["filename"] == clip.name
    done = wait_done(client, job["id"])
    assert done["status"] == "done", done
    cli = CliRunner().invoke(
        cli_app, ["predict", str(clip), "--model", str(model), "--json", "--no-timeline"]
    )
    assert cli.exit_code == 0, cli.output
    expected = json.loads(cli.stdout)
    assert expected[0]["path"] == str(clip)
    expected[0]["path"] = clip.name  # the service shows the client's file name, not where it stored it
    assert done["result"] == expected


def test_identical_upload_is_answered_from_the_first(served, sample_clip_paths: list[Path]) -> None:
    client, settings = served
    clip = sample_clip_paths[2]
    first = wait_done(client, upload(client, clip, timeline="false").json()["jobs"][0]["id"])
    again = upload(client, clip, timeline="false").json()["jobs"][0]
    assert again["status"] == "done" and again["cached"] is True  # at once, no worker involved
    assert again["result"] == first["result"] and again["id"] != first["id"]
    stored = [p for p in Path(settings.uploads).rglob("*") if p.is_file() and p.parent.name != "tmp"]
    assert sum(p.name == first["sha256"] for p in stored) == 1  # one stored file for both
    other = upload(client, clip, timeline="true").json()["jobs"][0]  # other options: scored again
    assert other["cached"] is False
    renamed = client.post(
        "/v1/jobs",
        files=[("file", ("same_bytes.mp4", clip.read_bytes(), "video/mp4"))],
        data={"timeline": "false"},
    ).json()["jobs"][0]
    assert renamed["cached"] is True  # the same bytes under another name: the same scores, its own name
    assert (
        renamed["result"][0]["video_id"] == "same_bytes" and renamed["result"][0]["path"] == "same_bytes.mp4"
    )
    assert renamed["result"][0]["score"] == first["result"][0]["score"]


def test_long_video_gets_its_timeline(served, long_video: Path) -> None:
    client, _ = served
    job = wait_done(client, upload(client, long_video, stride="1").json()["jobs"][0]["id"])
    assert job["status"] == "done", job
    (rec,) = job["result"]
    windows = rec["timeline"]["windows"]
    assert [w["start"] for w in windows] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert rec["score"] == pytest.approx(sum(w["score"] for w in windows) / len(windows))
    assert rec["timeline"]["summary"]["peak"]["score"] == pytest.approx(max(w["score"] for w in windows))
    frame = client.get(f"/v1/jobs/{job['id']}/frame", params={"t": 4.2, "width": 96})
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    assert frame.content[:2] == b"\xff\xd8"
    assert client.get(f"/v1/jobs/{job['id']}/frame", params={"t": 60}).status_code == 422  # after the end


def test_export_is_the_jobs_json_and_the_csv_of_predict(served, model: Path, long_video: Path) -> None:
    from tiermem.pipeline import Pipeline

    client, _ = served
    job = wait_done(client, upload(client, long_video, stride="1").json()["jobs"][0]["id"])
    as_json = client.get(f"/v1/jobs/{job['id']}/export", params={"format": "json"})
    assert as_json.headers["content-disposition"] == 'attachment; filename="joined.tiermem.json"'
    assert as_json.json() == client.get(f"/v1/jobs/{job['id']}").json()
    as_csv = client.get(f"/v1/jobs/{job['id']}/export", params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    got = pd.read_csv(io.StringIO(as_csv.text))
    # the rows `tiermem predict --csv` writes for the same video, one per window
    expected = Pipeline.load(model).predict(long_video, timeline=True, stride=1.0).rows()
    assert list(got.columns) == list(expected.columns)
    assert (got["path"] == "joined.mp4").all() and len(got) == 6
    numbers = [
        c for c in expected.columns if c.startswith(("start", "end", "score", "percentile", "contrib_"))
    ]
    np.testing.assert_allclose(
        got[numbers].to_numpy(float), expected[numbers].to_numpy(float), rtol=1e-6, atol=1e-9
    )
    assert client.get(f"/v1/jobs/{job['id']}/export", params={"format": "xml"}).status_code == 422
    queued = upload(client, long_video, stride="2").json()["jobs"][0]
    early = client.get(f"/v1/jobs/{queued['id']}/export")
    assert early.status_code in (200, 409) and (
        early.status_code == 200 or "only a finished job" in early.json()["detail"]
    )


def test_a_heatmap_of_a_job_equals_the_models(served, model: Path, long_video: Path) -> None:
    from tiermem.pipeline import Pipeline

    client, settings = served
    job = wait_done(client, upload(client, long_video, stride="1").json()["jobs"][0]["id"])
    answer = client.get(f"/v1/jobs/{job['id']}/heatmap", params={"t": 4.0, "grid": 3})
    assert answer.status_code == 200, answer.text
    got = answer.json()
    expected = Pipeline.load(model).heatmap(long_video, 4.0, grid=3)
    assert got["video"] == "joined.mp4" and got["grid"] == [3, 3]
    assert (got["start"], got["end"]) == (pytest.approx(expected.start), pytest.approx(expected.end))
    np.testing.assert_allclose(got["effect"], expected.effect, atol=1e-5)
    png = client.get(f"/v1/jobs/{job['id']}/heatmap", params={"t": 4.0, "grid": 3, "format": "png"})
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    late = client.get(f"/v1/jobs/{job['id']}/heatmap", params={"t": 30})
    assert late.status_code == 422 and "end of the video" in late.json()["detail"]
    assert settings.data not in late.json()["detail"]  # the server's folders stay unnamed
    assert client.get(f"/v1/jobs/{job['id']}/heatmap").status_code == 422  # t is required
    assert client.get("/v1/jobs/nope/heatmap", params={"t": 1}).status_code == 404


def test_a_jobs_address_serves_the_page(idle) -> None:
    client, _ = idle()
    page = client.get("/jobs/0123abcd")
    assert page.status_code == 200 and 'id="cards"' in page.text


def test_history_per_video_folds_resubmissions_and_a_video_can_be_deleted(
    idle, sample_clip_paths: list[Path]
) -> None:
    client, settings = idle()
    first = upload(client, sample_clip_paths[1]).json()["jobs"][0]
    upload(client, sample_clip_paths[1], timeline="true")
    again = client.post(
        "/v1/jobs", files=[("file", ("renamed.mp4", sample_clip_paths[1].read_bytes(), "video/mp4"))]
    ).json()["jobs"][0]
    other = upload(client, sample_clip_paths[2]).json()["jobs"][0]
    assert client.get("/v1/jobs").json()["total"] == 4
    folded = client.get("/v1/jobs", params={"per_video": "true"}).json()
    assert folded["total"] == 2
    assert [(j["id"], j["submissions"]) for j in folded["jobs"]] == [(other["id"], 1), (again["id"], 3)]
    assert client.delete(f"/v1/videos/{first['sha256']}").status_code == 204
    assert [j["id"] for j in client.get("/v1/jobs").json()["jobs"]] == [other["id"]]
    assert leftovers(settings) == [Path(settings.uploads) / other["sha256"][:2] / other["sha256"]]
    assert client.delete(f"/v1/videos/{first['sha256']}").status_code == 404
    assert client.delete("/v1/videos/..%2F..%2Fjobs.sqlite3").status_code == 404


def test_paging_lists_newest_first_without_results(served, sample_clip_paths: list[Path]) -> None:
    client, _ = served
    ids = [upload(client, p, timeline="false").json()["jobs"][0]["id"] for p in sample_clip_paths[3:5]]
    everything = client.get("/v1/jobs", params={"limit": 200}).json()
    assert everything["total"] == len(everything["jobs"]) >= 2
    first = client.get("/v1/jobs", params={"limit": 1, "offset": 0}).json()
    second = client.get("/v1/jobs", params={"limit": 1, "offset": 1}).json()
    assert [j["id"] for j in first["jobs"] + second["jobs"]] == ids[::-1]
    assert "result" not in first["jobs"][0]
    created = [j["created"] for j in everything["jobs"]]
    assert created == sorted(created, reverse=True)
    assert client.get("/v1/jobs", params={"limit": 0}).status_code == 422


def test_delete_removes_the_job_and_its_upload(served, tmp_path: Path, write_video) -> None:
    import numpy as np

    client, settings = served
    path = write_video(tmp_path / "only_once.mp4", np.full((20, 64, 64, 3), 90, np.uint8), fps=10)
    job = upload(client, path, timeline="false").json()["jobs"][0]
    stored = Path(settings.uploads) / job["sha256"][:2] / job["sha256"]
    assert stored.is_file()
    wait_done(client, job["id"])
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert not stored.exists()
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 404


# -- refusals ----------------------------------------------------------------------------------


@pytest.fixture
def idle(model: Path, tmp_path: Path):
    """An app without workers (its lifespan is not entered), with limits set per test."""

    def make(**limits: Any) -> tuple[TestClient, ServeSettings]:
        settings = ServeSettings(model=str(model), data=str(tmp_path / "data"), **limits)
        return TestClient(create_app(settings), base_url=LOCAL), settings

    return make


def leftovers(settings: ServeSettings) -> list[Path]:
    return [p for p in Path(settings.uploads).rglob("*") if p.is_file()]


def test_unknown_job_is_404(idle) -> None:
    client, _ = idle()
    for call in (client.get, client.delete):
        answer = call("/v1/jobs/nope")
        assert answer.status_code == 404 and answer.json() == {"detail": "no job nope"}
    assert client.get("/v1/jobs/nope/frame").status_code == 404


def test_oversized_upload_is_413_and_leaves_nothing(idle, sample_clip_paths: list[Path]) -> None:
    client, settings = idle(max_upload_mb=0.05)  # 51 KiB; the clips are 100 KiB and more
    answer = upload(client, sample_clip_paths[1])
    assert answer.status_code == 413
    assert (
        "larger than the 0.05 MiB limit" in answer.json()["detail"]
        and sample_clip_paths[1].name in answer.json()["detail"]
    )
    assert leftovers(settings) == []  # the part file is removed
    assert client.get("/v1/jobs").json()["total"] == 0


def test_not_a_video_is_422_with_the_decoders_reason(idle, tmp_path: Path) -> None:
    client, settings = idle()
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are meeting notes, not a video\n" * 50)
    answer = upload(client, fake)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith("notes.mp4: ") and "Invalid data found when processing input" in detail
    assert "\n" not in detail and leftovers(settings) == []


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"window": "-1"}, "window must be a positive number of seconds"),
        ({"stride": "soon"}, "stride must be a number of seconds"),
        ({"timeline": "maybe"}, "timeline must be auto, true or false"),
    ],
)
def test_bad_options_are_422(idle, sample_clip_paths: list[Path], form: dict[str, str], message: str) -> None:
    client, settings = idle()
    answer = upload(client, sample_clip_paths[1], **form)
    assert answer.status_code == 422 and message in answer.json()["detail"]
    assert leftovers(settings) == []


def test_no_file_or_no_multipart_is_refused(idle) -> None:
    client, _ = idle()
    assert client.post("/v1/jobs", data={"timeline": "auto"}, files={"x": (None, "1")}).status_code == 422
    answer = client.post("/v1/jobs", content=b"{}", headers={"content-type": "application/json"})
    assert answer.status_code == 400 and "multipart/form-data" in answer.json()["detail"]


def test_full_queue_is_429(idle, sample_clip_paths: list[Path]) -> None:
    client, _ = idle(max_queue=1)
    assert upload(client, sample_clip_paths[1]).status_code == 202  # no worker: it stays queued
    answer = upload(client, sample_clip_paths[2])
    assert answer.status_code == 429 and "queue is full" in answer.json()["detail"]
    assert answer.headers["retry-after"] == "30"


def test_queue_limit_counts_every_video_of_a_request(idle, sample_clip_paths: list[Path]) -> None:
    client, settings = idle(max_queue=2)
    answer = upload(client, *sample_clip_paths[1:4])  # 3 videos for 2 places: none is queued
    assert answer.status_code == 429
    assert client.get("/v1/jobs").json()["total"] == 0 and leftovers(settings) == []
    assert upload(client, *sample_clip_paths[1:3]).status_code == 202


def test_api_key_is_required_when_set(idle, sample_clip_paths: list[Path]) -> None:
    client, _ = idle(api_key="s3cret")
    assert client.get("/v1/jobs").status_code == 401
    assert client.get("/v1/jobs", headers={"X-API-Key": "wrong"}).status_code == 401
    assert upload(client, sample_clip_paths[1]).status_code == 401
    assert client.get("/v1/jobs", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/v1/jobs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/healthz").status_code == 200 and client.get("/").status_code == 200  # public


def test_client_file_names_never_become_paths(idle, sample_clip_paths: list[Path], tmp_path: Path) -> None:
    client, settings = idle()
    data = sample_clip_paths[1].read_bytes()
    answer = client.post("/v1/jobs", files=[("file", ("../../../../escape.mp4", data, "video/mp4"))])
    assert answer.status_code == 202
    job = answer.json()["jobs"][0]
    assert job["filename"] == "escape.mp4"
    assert leftovers(settings) == [Path(settings.uploads) / job["sha256"][:2] / job["sha256"]]
    assert not any(p.name == "escape.mp4" for p in tmp_path.parent.rglob("escape.mp4"))


@pytest.mark.parametrize("name", ["日本.mp4", "vidéo.mp4", "party 🎉.mp4"])
def test_any_utf8_file_name_is_kept_for_display_never_on_disk(
    idle, sample_clip_paths: list[Path], name: str
) -> None:
    client, settings = idle()
    answer = client.post("/v1/jobs", files=[("file", (name, sample_clip_paths[1].read_bytes(), "video/mp4"))])
    assert answer.status_code == 202, answer.text
    job = answer.json()["jobs"][0]
    assert job["filename"] == name and client.get(f"/v1/jobs/{job['id']}").json()["filename"] == name
    assert leftovers(settings) == [Path(settings.uploads) / job["sha256"][:2] / job["sha256"]]


def test_page_and_its_files_ship_with_the_package(idle) -> None:
    client, _ = idle()
    page = client.get("/")
    assert page.status_code == 200 and 'id="files"' in page.text and '<label for="files"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "http" not in page.text.replace('href="/docs"', "").split("<body>")[0]  # no CDN in the head


# -- the door: hosts, origins, headers ------------------------------------------------------


def test_a_foreign_host_is_refused_with_400(idle) -> None:
    client, _ = idle()
    assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
    refused = client.get("/", headers={"Host": "evil.example:8000"})
    assert refused.status_code == 400 and "evil.example" in refused.json()["detail"]
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_and_the_bound_address_are_served(idle) -> None:
    client, _ = idle(host="10.1.2.3", allowed_hosts=("memo.lan", "*.corp.example"))
    for host in ("10.1.2.3:8000", "memo.lan", "api.corp.example", "localhost"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    for host in ("memo.lan.evil.example", "corp.example.evil", "10.1.2.4"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 400, host


def test_a_cross_origin_post_without_a_key_is_refused(idle, sample_clip_paths: list[Path]) -> None:
    client, settings = idle()
    video = [("file", (sample_clip_paths[1].name, sample_clip_paths[1].read_bytes(), "video/mp4"))]
    for headers in (
        {"Origin": "https://attacker.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:9999"},
    ):
        answer = client.post("/v1/jobs", files=video, headers=headers)
        assert answer.status_code == 403 and "another site" in answer.json()["detail"], headers
    assert client.delete("/v1/jobs/x", headers={"Origin": "https://attacker.example"}).status_code == 403
    assert client.get("/v1/jobs").json()["total"] == 0 and leftovers(settings) == []
    # the page itself (same origin), and clients that are not browsers, may submit
    same = client.post("/v1/jobs", files=video, headers={"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 202
    assert client.post("/v1/jobs", files=video).status_code == 202
    # reading is not refused: a page of another site cannot read the answer without CORS
    answer = client.get("/v1/jobs", headers={"Origin": "https://attacker.example"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


def test_a_key_or_an_allowed_origin_opens_the_door(idle, sample_clip_paths: list[Path]) -> None:
    video = [("file", (sample_clip_paths[1].name, sample_clip_paths[1].read_bytes(), "video/mp4"))]
    client, _ = idle(api_key="s3cret")
    foreign = {"Origin": "https://dash.example", "Sec-Fetch-Site": "cross-site"}
    assert client.post("/v1/jobs", files=video, headers=foreign).status_code == 403
    assert client.post("/v1/jobs", files=video, headers={**foreign, "X-API-Key": "s3cret"}).status_code == 202
    client, _ = idle(cors_origins=("https://dash.example",))
    assert client.post("/v1/jobs", files=video, headers=foreign).status_code == 202
    preflight = client.options(
        "/v1/jobs",
        headers={
            "Origin": "https://dash.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://dash.example"
    other = client.options(
        "/v1/jobs", headers={"Origin": "https://attacker.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in other.headers


def test_every_answer_carries_the_security_headers(idle) -> None:
    client, _ = idle()
    for path in ("/", "/static/app.js", "/healthz", "/v1/jobs/none", "/docs"):
        answer = client.get(path)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "no-referrer", path
        assert answer.headers["x-frame-options"] == "DENY", path
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy, path
        assert ("'unsafe-inline'" in policy) == (path == "/docs"), path
    refused = client.get("/", headers={"Host": "evil.example"})
    assert refused.headers["x-content-type-options"] == "nosniff"


def test_health_is_minimal_without_the_key(idle) -> None:
    client, _ = idle(api_key="s3cret")
    assert client.get("/healthz").json() == {"status": "ok"}
    full = client.get("/healthz", headers={"X-API-Key": "s3cret"}).json()
    assert full["version"] and "workers" in full and "max_upload_mb" in full
    client, _ = idle()
    assert "version" in client.get("/healthz").json()  # no key set: nothing to hide


def test_the_api_docs_are_served_from_the_package(idle) -> None:
    client, _ = idle()
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn." not in html and "fonts.googleapis" not in html, page
        scripts = [s.split('"')[0] for s in html.split('src="')[1:]]
        assert scripts and all(s.startswith("/") for s in scripts), (page, scripts)
        for script in scripts:
            assert client.get(script).status_code == 200, script


def test_a_text_model_or_a_missing_one_is_refused_as_the_server_starts(tmp_path: Path) -> None:
    with pytest.raises(
        TiermemError,
        match="memento10k-captions: a text model scores captions, which uploaded videos do not carry",
    ):
        ServeSettings(model="memento10k-captions", data=str(tmp_path)).check_model()
    with pytest.raises(TiermemError, match="not a tiermem model"):
        ServeSettings(model=str(tmp_path / "nope"), data=str(tmp_path)).check_model()
