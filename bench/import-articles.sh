#!/usr/bin/env bash
# Times `paywall import-articles` on N generated articles (default 100,000) into a fresh
# SQLite database: JSON Lines of Markdown bodies (created, then the same file again, which
# updates every article by its external_id), then a WordPress export of N posts whose
# HTML bodies are converted to Markdown. Each body is eight paragraphs (about 3 KB).
# Usage: bench/import-articles.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$n" "$work" <<'PY'
import json, sys
from xml.sax.saxutils import escape
n, work = int(sys.argv[1]), sys.argv[2]
sentence = ("Le conseil municipal a débattu pendant trois heures du budget de l'année, "
            "des écoles et de la voirie, avant un vote serré. ")
paragraphs = [f"{sentence * 3}Paragraphe {k}." for k in range(8)]
with open(f"{work}/archive.jsonl", "w") as f:
    for i in range(n):
        f.write(json.dumps({
            "title": f"Archive article {i}", "body": "\n\n".join(paragraphs),
            "section": ["politique", "ville", "sport", "culture"][i % 4],
            "access": ["free", "metered", "subscribers"][i % 3], "status": "published",
            "published_at": f"20{10 + i % 15:02d}-0{1 + i % 9}-1{i % 10}T08:00:00Z",
            "external_id": f"cms-{i}", "canonical_url": f"https://old.example.com/a/{i}",
        }, ensure_ascii=False) + "\n")
with open(f"{work}/site.xml", "w") as f:
    f.write('<?xml version="1.0" encoding="UTF-8" ?>\n<rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/">\n<channel>\n')
    html = "".join(f"<p>{escape(p)}</p>\n" for p in paragraphs[:3]) + "<!--more-->\n" + \
        "".join(f"<p>{escape(p)} <strong>gras</strong></p>\n" for p in paragraphs[3:])
    for i in range(n):
        f.write(f"<item><title>Post {i}</title><link>https://wp.example.com/?p={i}</link>"
                f"<dc:creator>editor</dc:creator><guid isPermaLink=\"false\">https://wp.example.com/?p={i}</guid>"
                f"<content:encoded><![CDATA[{html}]]></content:encoded>"
                f"<wp:post_id>{i}</wp:post_id><wp:post_date_gmt>2024-03-0{1 + i % 9} 08:00:00</wp:post_date_gmt>"
                f"<wp:post_name>post-{i}</wp:post_name><wp:status>publish</wp:status>"
                f"<wp:post_type>post</wp:post_type><category domain=\"category\">Ville</category></item>\n")
    f.write("</channel>\n</rss>\n")
PY
export DATABASE_URL="sqlite://$work/import.db"
run() {
  local label=$1 file=$2
  local start=$EPOCHREALTIME
  ./target/release/paywall import-articles "$file" > "$work/report.txt"
  local end=$EPOCHREALTIME
  local seconds
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  echo "$label $n articles: $seconds s ($(tail -n 1 "$work/report.txt"))"
}
run "jsonl, create" "$work/archive.jsonl"
run "jsonl, update" "$work/archive.jsonl"
rm -f "$work"/import.db*
run "wordpress, create" "$work/site.xml"
echo "database: $(du -h "$work/import.db" | cut -f1)"
