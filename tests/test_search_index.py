"""The search index hook (tests/engine/search_index.py)."""

from tests.engine.search_index import LAB_BOOST, identifiers, shrink_index


def test_code_keeps_its_identifiers_once_and_prose_stays():
    text = ("Seed with <code>torch.manual_seed</code> first. "
            "<pre>g = torch.manual_seed(0)\nx = torch.randn(3, generator=g)\n"
            "print(x.is_contiguous())</pre> done")
    index = shrink_index({"docs": [{"location": "foundations/x/", "text": text}]})
    shrunk = index["docs"][0]["text"]
    assert shrunk.startswith("Seed with <code>torch.manual_seed</code> first. ")
    assert "<code>g torch manual_seed x randn generator print is_contiguous</code>" in shrunk
    assert "(0)" not in shrunk and shrunk.endswith(" done")
    assert "boost" not in index["docs"][0]


def test_labs_rank_below_concept_pages():
    index = shrink_index({"docs": [{"location": "labs/micrograd/", "text": "x"},
                                   {"location": "labs/", "text": "x"}]})
    assert index["docs"][0]["boost"] == LAB_BOOST < 1
    assert "boost" not in index["docs"][1]  # the labs' index page is a page


def test_markup_inside_code_is_not_an_identifier():
    assert identifiers('<span class="k">import</span> torch &amp; np') == (
        "import torch np")
    assert identifiers("a.b(c) + a") == "a b c"
