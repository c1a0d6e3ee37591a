"""The shape every real-file loader's error line must have, for the dataset tests."""


def assert_clear_line(dataset, err_or_message, path, *words):
    """err_or_message (a pytest.raises result or a string) is one line naming path, the fix
    `dlb_data download <dataset>`, and each of words."""
    message = err_or_message if isinstance(err_or_message, str) else str(err_or_message.value)
    assert str(path) in message and "\n" not in message and f"dlb_data download {dataset}" in message, message
    for word in words:
        assert word in message, message
