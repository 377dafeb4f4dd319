"""Our own parallel QA set: shape, fixed split, and that it loads through the common readers."""

from scaling.data import check_overlap, load_benchmark, load_corpus

LANGS = ("ar", "de", "en", "es", "fr", "hi", "ru", "zh")


def test_train_split():
    corpus = load_corpus("parallel-qa")
    assert corpus.languages == LANGS and corpus.num_groups == 70 and len(corpus) == 560
    assert corpus.group_sizes() == {8: 70} and not corpus.is_bitext


def test_eval_split_is_a_merged_pool():
    bench = load_benchmark("parallel-qa").single()
    s = bench.summary()
    assert bench.name == "parallel-qa:eval" and s["query_groups"] == 30
    assert s["queries_per_language"] == {lang: 30 for lang in LANGS}
    assert s["relevant_per_query"] == {8: 240}
    assert all(n >= 30 for n in s["candidates_per_language"].values())


def test_splits_are_disjoint_and_fixed():
    train = load_corpus("parallel-qa:train")
    eval_groups = set(load_corpus("parallel-qa:eval").table.column("group_id").to_pylist())
    assert not eval_groups & set(train.table.column("group_id").to_pylist())
    assert {int(g.split("-")[1]) % 10 for g in eval_groups} == {3, 6, 9}
    assert not check_overlap(train, load_benchmark("parallel-qa:eval").single()).overlaps


def test_passages_have_one_to_three_sentences():
    bench = load_benchmark("parallel-qa:train").single()
    per_paragraph = {}
    for cid in bench.candidates.column("id").to_pylist():
        lang, para, _ = cid.split("/")
        per_paragraph[(lang, para)] = per_paragraph.get((lang, para), 0) + 1
    assert set(per_paragraph.values()) <= {1, 2, 3} and len(per_paragraph) == 560
