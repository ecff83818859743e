#!/usr/bin/env bash
# Download the published datasets into the data-folder layout of data/README.md (needs internet;
# the development machines cannot reach these hosts, so this script is kept small and obvious).
# Usage: bash data/download.sh [TARGET_DIR]   then: export SENTENCE_MTL_DATA=TARGET_DIR
#
# Differences from the shared data folder (see each dataset's PROVENANCE.md there): here AG News train.csv is the
# full 120k canonical file and TweetEval train is the published 45,615-tweet file, so numbers
# trained on them are not the committed ones. The script records the sha256 of every file it
# fetched in TARGET_DIR/checksums.sha256, which the loaders then verify on every load.
set -euo pipefail
T="${1:-data/raw}"
mkdir -p "$T"/{ag_news,tweeteval_sentiment,stsb,scifact_beir/qrels,twitter_us_airline_sentiment,uci_sentiment_sentences}
get() { echo "  $2"; curl -fsSL --retry 3 -o "$T/$2" "$1"; }

AG=https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv
get $AG/train.csv ag_news/train.csv
get $AG/test.csv ag_news/test.csv
get $AG/classes.txt ag_news/classes.txt

TE=https://raw.githubusercontent.com/cardiffnlp/tweeteval/main/datasets/sentiment
for f in mapping.txt {train,val,test}_{text,labels}.txt; do get $TE/$f tweeteval_sentiment/$f; done

curl -fsSL https://ixa2.si.ehu.eus/stswiki/images/4/48/Stsbenchmark.tar.gz | tar -xz -C "$T/stsb" --strip-components=1

curl -fsSL -o "$T/scifact.zip" https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip
unzip -oq "$T/scifact.zip" -d "$T" && cp -r "$T/scifact/"* "$T/scifact_beir/" && rm -rf "$T/scifact" "$T/scifact.zip"

get https://raw.githubusercontent.com/Riccocez/Sentiment-Classifier/9113f9c2347ed2f56bcc293aa2de74b7d0db0c3a/Tweets.csv \
    twitter_us_airline_sentiment/Tweets_repaired.csv

# UCI Sentiment Labelled Sentences (out-of-domain evaluation only): the three files, then test.csv
curl -fsSL -o "$T/uci.zip" https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip
unzip -ojq "$T/uci.zip" 'sentiment labelled sentences/*_labelled.txt' -d "$T/uci_sentiment_sentences" && rm "$T/uci.zip"
python3 - "$T/uci_sentiment_sentences" <<'PY'
import csv, sys
from pathlib import Path
folder = Path(sys.argv[1])
with open(folder / "test.csv", "w", newline="", encoding="utf-8") as out:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["text", "sentiment", "source"])
    for source in ("amazon_cells", "imdb", "yelp"):
        for line in (folder / f"{source}_labelled.txt").read_text(encoding="utf-8").split("\n"):
            if line:
                text, label = line.split("\t")
                writer.writerow([text.rstrip(), ("negative", "positive")[int(label)], source.split("_")[0]])
PY

(cd "$T" && find . -type f \( -name '*.csv' -o -name '*.txt' -o -name '*.tsv' -o -name '*.jsonl' \) \
    ! -name checksums.sha256 | sed 's|^\./||' | sort | xargs sha256sum > checksums.sha256)
echo "done: export SENTENCE_MTL_DATA=$(cd "$T" && pwd)"
