"""The picker page as served (the browser test drives it; this checks what it ships)."""

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
