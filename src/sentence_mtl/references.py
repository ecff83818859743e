"""Published numbers we compare against (docs/design.md), each with its source, as fractions."""

PUBLISHED = {
    "stsb_minilm_spearman": (0.8203, "all-MiniLM-L6-v2 on STS-B test, cosine Spearman (SBERT model table)"),
    "ag_news_8_setfit_minilm": (0.831, "SetFit with all-MiniLM-L6-v2, 8/class (Tunstall et al. 2022)"),
    "ag_news_8_setfit_mpnet_templates": (0.847, "SetFit with paraphrase-mpnet-base-v2 and label templates, "
                                         "8/class, mean over its splits (SetFit final_results/setfit/"
                                         "paraphrase-mpnet-base-v2-epochs_20-with-augmentation): the "
                                         "best multi-split 8-shot result found for a model no larger than "
                                         "BERT-base"),
    "ag_news_8_mpnet_logreg": (0.743, "frozen mpnet + logistic regression, 8/class (Tunstall et al. 2022)"),
    "ag_news_64_mpnet_logreg": (0.844, "frozen mpnet + logistic regression, 64/class (Tunstall et al. 2022)"),
    "ag_news_64_setfit_mpnet": (0.880, "SetFit (mpnet), 64/class (Tunstall et al. 2022)"),
    "ag_news_64_roberta_large": (0.884, "RoBERTa-large fine-tuned, 64/class (Tunstall et al. 2022)"),
    "ag_news_full_distilbert": (0.934, "DistilBERT, full 120k training set"),
    "ag_news_full_roberta_large": (0.938, "RoBERTa-large, full 120k training set"),
    "ag_news_full_xlnet_large": (0.9555, "XLNet-large, full training set (Yang et al. 2019)"),
    "tweeteval_svm": (0.629, "SVM (Barbieri et al. 2020, TweetEval)"),
    "tweeteval_fasttext": (0.629, "FastText (Barbieri et al. 2020, TweetEval)"),
    "tweeteval_roberta_base": (0.713, "RoBERTa-base (Barbieri et al. 2020, TweetEval)"),
    "tweeteval_bertweet": (0.734, "BERTweet (Nguyen et al. 2020)"),
    "tweeteval_timelms": (0.737, "TimeLMs (Loureiro et al. 2022)"),
    "scifact_bm25s_ndcg10": (0.687, "BM25S, Lucene variant, on BEIR SciFact, NDCG@10: MTEB's BM25 baseline (Lù 2024)"),
    "scifact_bm25_bge_base_rrf_ndcg10": (0.744, "BM25 and bge-base-en-v1.5 (110M parameters) fused by reciprocal "
                                                "rank on BEIR SciFact, NDCG@10: QuackIR's BEIR RRF baselines, DuckDB"),
    "scifact_bge_small_ndcg10": (0.713, "bge-small-en-v1.5 (33M parameters, trained on far more data) on MTEB "
                                        "SciFact, NDCG@10 (Xiao et al. 2023)"),
}


def value(key: str) -> float:
    return PUBLISHED[key][0]
