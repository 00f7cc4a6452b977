"""The answer store (:class:`AnswerStore`) and its backends."""
