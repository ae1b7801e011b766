"""Hardening (issue 5), load: predictions through ``gradio_client`` while a training runs in the
launched app. The queue is bounded, every prediction is served, the training keeps stepping.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from support.files import write_text
from support.models import write_image
from support.net import build_app, launched, training_step
from support.ui import DEFAULT_CHOICE, PREDICT_CONCURRENCY, TRAIN_CONCURRENCY, context, tiny_controls

pytestmark = pytest.mark.usefixtures("training_slot_free")


def test_concurrent_predictions_while_training(tmp_path: Path, shipped: Path) -> None:
    from gradio_client import Client, handle_file

    demo = build_app(shipped, tmp_path)
    # A flood waits in a bounded queue (then is told the queue is full) instead of piling up in memory.
    assert demo._queue.max_size == context.QUEUE_MAX_SIZE
    fns = {fn.api_name: fn for fn in demo.fns.values()}
    assert fns["predict"].concurrency_limit == PREDICT_CONCURRENCY
    assert fns["train"].concurrency_limit == TRAIN_CONCURRENCY
    with launched(demo):
        bg, fg = write_image(tmp_path / "bg.png", 83, 61, 1), write_image(tmp_path / "fg.png", 83, 61, 2)
        trainer = Client(demo.local_url, verbose=False)
        args = {"dataset_kind": "synthetic", "zip_file": None, "folder": "", **tiny_controls(budget=100000)}
        args.update(eval_every=50, run_name="under-load")
        job = trainer.submit(**args, api_name="/train")
        deadline = time.monotonic() + 60
        while training_step(job) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        before = training_step(job)
        assert before >= 1, "the training did not start"
        errors: list[BaseException] = []
        sizes: list[tuple[int, int]] = []

        def client_loop() -> None:
            client = Client(demo.local_url, verbose=False)
            for _ in range(5):
                try:
                    out = client.predict(
                        handle_file(str(bg)), handle_file(str(fg)), DEFAULT_CHOICE, api_name="/predict"
                    )
                    sizes.append(Image.open(out[4]).size)
                except Exception as err:  # noqa: BLE001 - collected and asserted on below
                    errors.append(err)

        clients = [threading.Thread(target=client_loop) for _ in range(4)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(120)
        time.sleep(1.0)  # one more progress render
        after = training_step(job)
        assert errors == [] and sizes == [(83, 61)] * 20
        assert after > before, "the training must keep going while predictions are served"
        # Through the real upload path too, a non-image gets our message (not Gradio's decoder error).
        notes = write_text(tmp_path / "notes.png", "not a photo")
        with pytest.raises(Exception, match="is not an image PIL can read") as shown:
            trainer.predict(
                handle_file(str(bg)), handle_file(str(notes)), DEFAULT_CHOICE, api_name="/predict"
            )
        assert "Traceback" not in str(shown.value)
        trainer.predict(api_name="/stop_training")
        deadline = time.monotonic() + 30
        while not job.done() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert job.done()
