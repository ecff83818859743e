from sentence_mtl.reporting.source_words import literal_words


def test_literal_words_count_strings_but_not_docstrings(tmp_path):
    (tmp_path / "a.py").write_text('"""Module docstring, not counted."""\n\n\ndef f():\n'
                                   '    """Nor this one."""\n    return "two words" + f"{1} and three"\n')
    assert literal_words(tmp_path) == 4  # "two words", then the f-string's constant parts
