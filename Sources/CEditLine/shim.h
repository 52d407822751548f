#pragma once
#include <stdio.h>
#include <editline/readline.h>

// Swift 6 cannot touch mutable C globals directly; these accessors stand in for them.
static inline void mge_set_completion_function(rl_completion_func_t *f) { rl_attempted_completion_function = f; }
static inline void mge_set_completion_append_character(int c) { rl_completion_append_character = c; }
static inline void mge_set_word_break_characters(char *chars) { rl_completer_word_break_characters = chars; }
static inline void mge_set_catch_signals(int on) { rl_catch_signals = on; }
static inline int mge_history_length(void) { return history_length; }
static inline const char *mge_line_buffer(void) { return rl_line_buffer; }
