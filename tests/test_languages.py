import pytest

from scaling.languages import LanguageOrdering, UnknownLanguageError, canonical, canonical_many, language_name


@pytest.mark.parametrize("code,expected", [
    ("de", "de"), ("deu", "de"), ("deu_Latn", "de"), ("DE", "de"), ("de-Latn", "de"),
    ("zho_Hans", "zh"), ("zh", "zh"), ("cmn", "zh"), ("zho_Hant", "zh-Hant"),
    ("arb_Arab", "ar"), ("ara", "ar"), ("arb_Latn", "ar-Latn"),
    ("srp_Cyrl", "sr"), ("ace_Arab", "ace-Arab"), ("ace_Latn", "ace"),
    ("eng", "en"), ("tha", "th"), ("ron", "ro"),
])
def test_canonical_codes(code, expected):
    assert canonical(code) == expected


def test_script_kept_where_it_distinguishes():
    assert canonical("zho_Hans") != canonical("zho_Hant")
    assert canonical("kas_Arab") != canonical("kas_Deva")


def test_varieties_our_sources_keep_apart_stay_apart():
    # langcodes folds twi into Akan and kzj into dtp; SIB-200 and Tatoeba ship both.
    assert canonical("twi_Latn") != canonical("aka_Latn")
    assert canonical("kzj") != canonical("dtp")


@pytest.mark.parametrize("bad", ["xyz", "english", "", "zz_Latn", "12"])
def test_unknown_code_is_an_error_naming_it(bad):
    with pytest.raises(UnknownLanguageError) as exc:
        canonical(bad)
    assert repr(bad) in str(exc.value) or "empty" in str(exc.value)


def test_canonical_many_refuses_two_names_for_one_language():
    with pytest.raises(ValueError, match="'de' and 'deu_Latn' both mean 'de'"):
        canonical_many(["de", "en", "deu_Latn"])


def test_language_name():
    assert language_name("deu") == "German"
    assert language_name("zho_Hant") == "Chinese (Traditional)"


def test_first_k_subsets_are_nested():
    order = LanguageOrdering(("eng", "deu_Latn", "zho_Hans", "ara", "hin", "th"))
    subsets = order.subsets(range(1, 7))
    for k in range(1, 6):
        assert set(subsets[k]) < set(subsets[k + 1])
        assert subsets[k + 1][:k] == subsets[k]
    assert subsets[3] == ("en", "de", "zh")


def test_ordering_by_size_is_largest_first_and_stable():
    order = LanguageOrdering.by_size({"de": 5, "en": 9, "fr": 5, "cmn": 7})
    assert order.languages == ("en", "zh", "de", "fr")  # ties broken by code
    assert order.first(2) == ("en", "zh")


def test_ordering_by_size_merges_codes_of_one_language():
    assert LanguageOrdering.by_size({"de": 1, "deu_Latn": 5, "en": 4}).languages == ("de", "en")


def test_first_k_out_of_range_names_the_ordering():
    order = LanguageOrdering(("en", "de"), name="tiny")
    with pytest.raises(ValueError, match="first 3 languages of ordering 'tiny'"):
        order.first(3)
    with pytest.raises(ValueError):
        order.first(0)


def test_explicit_subset_is_checked_and_ordered():
    order = LanguageOrdering(("en", "de", "zh"))
    assert order.select(["zho_Hans", "eng"]) == ("en", "zh")
    with pytest.raises(ValueError, match=r"\['fr'\] are not in ordering"):
        order.select(["fr"])


def test_ordering_refuses_duplicates_and_empty():
    with pytest.raises(ValueError):
        LanguageOrdering(("en", "eng"))
    with pytest.raises(ValueError):
        LanguageOrdering(())
