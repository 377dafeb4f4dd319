"""Canonical language codes and nested language subsets.

Every dataset names languages its own way: XQuAD uses ISO 639-1 (``de``), Tatoeba ISO 639-3
(``deu``), FLORES/SIB-200 ISO 639-3 plus script (``deu_Latn``). Studies join them, so the harness
maps every code to one canonical BCP 47 tag with the ``langcodes`` library (IANA registry plus
CLDR aliases; we do not maintain a code table of our own):

* the shortest language subtag (``deu`` -> ``de``), with the dominant member of a macrolanguage
  folded into it (``cmn`` -> ``zh``, ``arb`` -> ``ar``) so that XQuAD's ``zh`` meets Tatoeba's
  ``cmn``;
* the script only where it distinguishes something: it is dropped when it is the language's
  likely script (``deu_Latn`` -> ``de``, ``zho_Hans`` -> ``zh``) and kept otherwise
  (``zho_Hant`` -> ``zh-Hant``, ``arb_Latn`` -> ``ar-Latn``).

``langcodes`` folds two codes into languages that our data keeps separate (SIB-200 has both
``aka`` and ``twi``; Tatoeba both ``dtp`` and ``kzj``); ``_KEEP_DISTINCT`` keeps them apart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import langcodes
from langcodes import Language

__all__ = [
    "UnknownLanguageError",
    "canonical",
    "canonical_many",
    "language_name",
    "LanguageOrdering",
]

# Codes langcodes would fold into another language, but which name distinct varieties that
# our sources ship side by side (folding them would merge two datasets into one language).
_KEEP_DISTINCT = {"twi": "tw", "tw": "tw", "kzj": "kzj"}
# Scripts that are the usual writing of a language although CLDR's likely script is a superset
# (Korean: Kore = Hangul + Hanja; FLORES writes kor_Hang for ordinary Korean).
_USUAL_SCRIPT = {("ko", "Hang")}


class UnknownLanguageError(ValueError):
    """A language code that is not in the IANA language subtag registry."""


@functools.lru_cache(maxsize=None)
def canonical(code: str) -> str:
    """Return the canonical tag of ``code`` (``de``, ``deu``, ``deu_Latn``, ``de-DE`` ...).

    Raises UnknownLanguageError naming the code if it is not a registered language.
    """
    if not isinstance(code, str) or not code.strip():
        raise UnknownLanguageError(f"empty or non-string language code: {code!r}")
    raw = code.strip().replace("_", "-")
    base, _, rest = raw.partition("-")
    if base.lower() in _KEEP_DISTINCT:
        raw = _KEEP_DISTINCT[base.lower()] + ("-" + rest if rest else "")
        tag = Language.get(raw, normalize=False)
    else:
        try:
            tag = Language.get(langcodes.standardize_tag(raw, macro=True))
        except (ValueError, langcodes.tag_parser.LanguageTagError) as exc:
            raise UnknownLanguageError(
                f"unknown language code {code!r}: not a BCP 47 / ISO 639 code ({exc})"
            ) from None
    if not tag.language or not tag.is_valid():
        raise UnknownLanguageError(
            f"unknown language code {code!r}: not in the IANA language subtag registry; "
            "use ISO 639-1 (de), ISO 639-3 (deu) or FLORES style (deu_Latn)"
        )
    if tag.script:
        plain = Language.make(language=tag.language, territory=tag.territory)
        if plain.maximize().script == tag.script or (tag.language, tag.script) in _USUAL_SCRIPT:
            tag = Language.make(language=tag.language, territory=tag.territory, variants=tag.variants)
    return tag.to_tag()


def canonical_many(codes: Iterable[str]) -> list[str]:
    """Canonicalise a list of codes, refusing two codes that name the same language."""
    out: list[str] = []
    seen: dict[str, str] = {}
    for code in codes:
        c = canonical(code)
        if c in seen:
            raise ValueError(
                f"language codes {seen[c]!r} and {code!r} both mean {c!r}; list each language once"
            )
        seen[c] = code
        out.append(c)
    return out


def language_name(code: str) -> str:
    """English display name of a canonical code (for tables and figure labels)."""
    return Language.get(canonical(code)).display_name()


@dataclass(frozen=True)
class LanguageOrdering:
    """A declared order of languages from which nested study subsets are cut.

    ``first(k)`` is always a prefix of ``first(k + 1)``, so points on a "number of training
    languages" axis differ only by the languages added, never by a reshuffle.
    """

    languages: tuple[str, ...]
    name: str = "explicit"

    def __post_init__(self) -> None:
        object.__setattr__(self, "languages", tuple(canonical_many(self.languages)))
        if not self.languages:
            raise ValueError(f"language ordering {self.name!r} is empty")

    @classmethod
    def by_size(cls, sizes: Mapping[str, int], name: str = "by-size") -> "LanguageOrdering":
        """Order languages by available data, largest first; ties broken by code for stability."""
        canon = {}
        for code, size in sizes.items():
            c = canonical(code)
            canon[c] = canon.get(c, 0) + int(size)
        ordered = sorted(canon, key=lambda c: (-canon[c], c))
        return cls(tuple(ordered), name=name)

    def first(self, k: int) -> tuple[str, ...]:
        """The first k languages of the ordering (nested in first(k + 1))."""
        if not 1 <= k <= len(self.languages):
            raise ValueError(
                f"cannot take the first {k} languages of ordering {self.name!r}: "
                f"it has {len(self.languages)} (choose 1..{len(self.languages)})"
            )
        return self.languages[:k]

    def subsets(self, ks: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """Nested subsets for several counts k."""
        return {k: self.first(k) for k in sorted(set(ks))}

    def select(self, languages: Sequence[str]) -> tuple[str, ...]:
        """An explicit subset, checked against the ordering and returned in its order."""
        wanted = canonical_many(languages)
        missing = [c for c in wanted if c not in self.languages]
        if missing:
            raise ValueError(
                f"languages {missing} are not in ordering {self.name!r} ({', '.join(self.languages)})"
            )
        return tuple(c for c in self.languages if c in set(wanted))


# ---- declared orderings for a language axis -------------------------------------------------
# The method's nine training languages (Elmahdy et al. 2024), first.
METHOD_LANGUAGES = ("ar", "zh", "en", "de", "es", "hi", "ru", "th", "tr")
# XTREME-R's 50 languages (Ruder et al. 2021, Table 1), Quechua as FLORES's Ayacucho (quy) and
# Tagalog as Filipino (fil, langcodes' canonical tag for tgl); not checked against its repository here.
XTREME_R_LANGUAGES = tuple(
    "af ar az bg bn de el en es et eu fa fi fr gu he hi ht hu id it ja jv ka kk ko lt ml mr ms my nl pa pl pt "
    "quy ro ru sw ta te th fil tr uk ur vi wo yo zh".split())
# The 205 language varieties of FLORES-200 / SIB-200, as their folder names.
FLORES_200_CODES = tuple("""
ace_Arab ace_Latn acm_Arab acq_Arab aeb_Arab afr_Latn ajp_Arab aka_Latn als_Latn amh_Ethi apc_Arab arb_Arab arb_Latn
ars_Arab ary_Arab arz_Arab asm_Beng ast_Latn awa_Deva ayr_Latn azb_Arab azj_Latn bak_Cyrl bam_Latn ban_Latn bel_Cyrl
bem_Latn ben_Beng bho_Deva bjn_Arab bjn_Latn bod_Tibt bos_Latn bug_Latn bul_Cyrl cat_Latn ceb_Latn ces_Latn cjk_Latn
ckb_Arab crh_Latn cym_Latn dan_Latn deu_Latn dik_Latn dyu_Latn dzo_Tibt ell_Grek eng_Latn epo_Latn est_Latn eus_Latn
ewe_Latn fao_Latn fij_Latn fin_Latn fon_Latn fra_Latn fur_Latn fuv_Latn gaz_Latn gla_Latn gle_Latn glg_Latn grn_Latn
guj_Gujr hat_Latn hau_Latn heb_Hebr hin_Deva hne_Deva hrv_Latn hun_Latn hye_Armn ibo_Latn ilo_Latn ind_Latn isl_Latn
ita_Latn jav_Latn jpn_Jpan kab_Latn kac_Latn kam_Latn kan_Knda kas_Arab kas_Deva kat_Geor kaz_Cyrl kbp_Latn kea_Latn
khk_Cyrl khm_Khmr kik_Latn kin_Latn kir_Cyrl kmb_Latn kmr_Latn knc_Arab knc_Latn kon_Latn kor_Hang lao_Laoo lij_Latn
lim_Latn lin_Latn lit_Latn lmo_Latn ltg_Latn ltz_Latn lua_Latn lug_Latn luo_Latn lus_Latn lvs_Latn mag_Deva mai_Deva
mal_Mlym mar_Deva min_Arab min_Latn mkd_Cyrl mlt_Latn mni_Beng mos_Latn mri_Latn mya_Mymr nld_Latn nno_Latn nob_Latn
npi_Deva nqo_Nkoo nso_Latn nus_Latn nya_Latn oci_Latn ory_Orya pag_Latn pan_Guru pap_Latn pbt_Arab pes_Arab plt_Latn
pol_Latn por_Latn prs_Arab quy_Latn ron_Latn run_Latn rus_Cyrl sag_Latn san_Deva sat_Olck scn_Latn shn_Mymr sin_Sinh
slk_Latn slv_Latn smo_Latn sna_Latn snd_Arab som_Latn sot_Latn spa_Latn srd_Latn srp_Cyrl ssw_Latn sun_Latn swe_Latn
swh_Latn szl_Latn tam_Taml taq_Latn taq_Tfng tat_Cyrl tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi tpi_Latn tsn_Latn
tso_Latn tuk_Latn tum_Latn tur_Latn twi_Latn tzm_Tfng uig_Arab ukr_Cyrl umb_Latn urd_Arab uzn_Latn vec_Latn vie_Latn
war_Latn wol_Latn xho_Latn ydd_Hebr yor_Latn yue_Hant zho_Hans zho_Hant zsm_Latn zul_Latn""".split())


def _in_order(*groups: Sequence[str]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for group in groups:
        out.update((canonical(code), None) for code in group)
    return tuple(out)


# Named orderings a study's language axis may cite (``axes.languages.ordering: flores-200``):
# nested, so the first k of one are always a prefix of the first k + 1.
NAMED_ORDERINGS: dict[str, tuple[str, ...]] = {
    "method": _in_order(METHOD_LANGUAGES),
    "xtreme-r": _in_order(METHOD_LANGUAGES, XTREME_R_LANGUAGES),
    # the method's languages, then XTREME-R's, then the other FLORES-200 varieties by code
    "flores-200": _in_order(METHOD_LANGUAGES, XTREME_R_LANGUAGES, FLORES_200_CODES),
}


def named_ordering(name: str) -> LanguageOrdering:
    """One of ``NAMED_ORDERINGS``; an unknown name is an error listing them."""
    if name not in NAMED_ORDERINGS:
        raise ValueError(f"unknown language ordering {name!r}; named orderings: {sorted(NAMED_ORDERINGS)} "
                         "(or give the languages as a list)")
    return LanguageOrdering(NAMED_ORDERINGS[name], name=name)
