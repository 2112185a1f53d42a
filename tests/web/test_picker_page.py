"""The picker page as served (the browser test drives it; this checks what it ships)."""

from pathlib import Path

import pytest


@pytest.mark.django_db
def test_page_serves_labels_and_assets(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for model_id, label in [("haiku", "Scary"), ("sonnet", "Fast"), ("sonnet[1m]", "Fast+"), ("opus", "Smart")]:
        assert f'value="{model_id}"' in html and f">{label}<" in html
    assert '<label for="prompt">' in html and '<label for="username">' in html
    for asset in ("/static/web/picker.js", "/static/web/picker.css"):
        assert asset in html
        served = client.get(asset)
        assert served.status_code == 200, asset
        served.close()


@pytest.mark.django_db
def test_page_is_get_only(client):
    assert client.post("/").status_code == 405


def test_collected_modules_import_each_other_by_their_hashed_names(tmp_path):
    """In production the page's modules are cached forever under hashed names: each module's
    imports name the hashed files of the same build, never a plain name a browser may hold an
    older copy of."""
    import re
    import shutil

    from django.conf import settings

    from mk0r.static_storage import StaticFilesStorage

    shutil.copytree(Path(settings.BASE_DIR) / "web" / "static", tmp_path, dirs_exist_ok=True)
    storage = StaticFilesStorage(location=tmp_path)
    names = [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()]
    for _ in storage.post_process({name: (storage, name) for name in names}):
        pass
    [entry] = [p for p in (tmp_path / "web").glob("picker.*.js") if not p.name.endswith(".gz")]
    imported = re.findall(r"""import\b[^;]*?["'](\./[^"']+)["'];""", entry.read_text())
    assert imported, entry.read_text()
    for name in imported:
        assert re.fullmatch(r"\./\w+\.[0-9a-f]{12}\.js", name), name
        assert (tmp_path / "web" / name).exists(), name
    assert (tmp_path / "web" / f"{entry.name}.gz").exists()  # and precompressed, as WhiteNoise serves it
