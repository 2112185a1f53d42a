"""Each benchmark owns one `## Title` section of docs/PERFORMANCE.md and rewrites only that."""

from pathlib import Path

PERFORMANCE_MD = Path(__file__).resolve().parent.parent / "docs" / "PERFORMANCE.md"
HEADER = "# Performance\n\nMeasured figures; each section is written by its benchmark.\n"


def write_section(title: str, body: str) -> None:
    """Replace the section called `title`, or add it at the end."""
    text = PERFORMANCE_MD.read_text() if PERFORMANCE_MD.exists() else HEADER
    heading = f"## {title}\n"
    section = f"{heading}\n{body.strip()}\n"
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("\n" + text[end + 1 :] if end != -1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    PERFORMANCE_MD.write_text(text)
