"""`patina manifest build` and `patina restore` as a user runs them (the installed command, real Ray, the
tests' S3 server), watching what they print and log."""

from pathlib import Path


def test_a_real_run_with_limit_never_shows_credentials(tmp_path, photo, tiny_checkpoint, s3_server, bucket):
    # `patina manifest build` then `patina restore --limit 2` on S3 as a user runs them, with credentials
    # that would be recognisable anywhere: the limit is honoured, and no output, result or Ray log shows
    # the secret or the access key, even for a row that fails.
    import io
    import os
    import subprocess
    import sys
    import time

    import pyarrow.parquet as pq

    secret, key_id = "patinaSECRETdoNotLog0123456789abcdefABCD", "AKIAPATINADONOTLOG77"
    storage = s3_server.storage()
    for i in range(3):
        buffer = io.BytesIO()
        photo.resize((40, 30)).rotate(i * 40).save(buffer, "PNG")
        storage.write_bytes(f"s3://{bucket}/scans/{i}.png", buffer.getvalue())
    storage.write_bytes(f"s3://{bucket}/scans/broken.png", b"not a png")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {"AWS_SECRET_ACCESS_KEY": secret, "AWS_ACCESS_KEY_ID": key_id}
    patina = [str(Path(sys.executable).parent / "patina")]
    endpoint = ["--endpoint-url", s3_server.endpoint_url]
    manifest = f"s3://{bucket}/manifest.parquet"
    started = time.time()

    built = subprocess.run(
        [*patina, "manifest", "build", f"s3://{bucket}/scans", manifest, *endpoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    restored = subprocess.run(
        [
            *patina,
            "restore",
            "--manifest",
            manifest,
            "--output",
            str(tmp_path / "out"),
            "--model",
            str(tiny_checkpoint),
            "--limit",
            "2",
            "--tile",
            "48",
            "--overlap",
            "8",
            *endpoint,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert built.returncode == 0 and "4" in built.stdout, built.stdout + built.stderr
    assert restored.returncode == 0, restored.stdout + restored.stderr
    results = pq.read_table(tmp_path / "out" / "results.parquet").to_pylist()
    assert sorted(row["status"] for row in results) == ["ok", "ok", "skipped", "skipped"]  # --limit 2
    seen = [built.stdout, built.stderr, restored.stdout, restored.stderr, str(results)]
    for session in Path("/tmp/ray").glob("session_*"):
        if session.is_dir() and not session.is_symlink() and session.stat().st_mtime >= started - 5:
            seen += [
                p.read_text(errors="replace")
                for p in session.rglob("*")
                if p.is_file() and p.stat().st_size < 10**7
            ]
    assert not [text for text in seen if secret in text or key_id in text]
