/* chat_in.h - reading and validating an OpenAI chat completions request, for the pairs that
 * serve chat clients with another provider format (chat_anthropic, chat_gemini).
 *
 * Design note
 * -----------
 * What a chat request means does not depend on the provider: the messages and their roles,
 * content parts, image_url data: URLs, tool calls and their arguments, tools, tool_choice,
 * max tokens, stop and the sampling numbers are read and refused here, with the same texts
 * for every pair; only the provider's name ("this model's provider (Gemini)") and what its
 * request is made of differ. A pair describes itself in a chat_in_ops_t (its name, the words
 * of the messages that name its own members, the callbacks that write its blocks) and builds
 * its document from what these readers hand it; each pair's file lists what it translates,
 * drops and refuses.
 *
 * The messages are walked in order: system and developer contents go to the pair's text
 * callback with blocks NULL (its system text); user, assistant and tool messages become
 * turns of the pair's own blocks, consecutive turns of one role merged into one, turns left
 * without blocks left out. Empty text is never handed to a callback.
 *
 * Errors: 0, XLATE_EREFUSE (err, which may be NULL, says why: xjson_refuse), XLATE_ENOMEM.
 * Memory: the values handed to callbacks belong to the client's document unless a comment
 * says "stolen". Pure, any thread.
 */
#ifndef LLMGATE_XLATE_CHAT_IN_H
#define LLMGATE_XLATE_CHAT_IN_H

#include <jansson.h>
#include <stddef.h>

#include "server/xlate/xlate.h"

/* How every chat request is read: duplicate members refused, "\u0000" in strings allowed. */
#define CHAT_JSON_LOAD (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

typedef struct chat_in_s chat_in_t;

typedef struct chat_in_ops_s {
    const char *provider;       /* the provider's name in the messages: "Anthropic" */
    const char *system_dest;    /* what system messages become: "Anthropic's system prompt" */
    const char *args_dest;      /* what tool call arguments become: "Anthropic's tool_use input" */
    const char *choice_says;    /* "n: this model's provider (P) <choice_says> one choice per
                                   request": "gives" */
    const char *lacks;          /* "log probabilities are <lacks> this model's provider (P)":
                                   "not available from" */
    const char *turn_key;       /* the member of a turn that holds its blocks: "content" */
    const char *assistant_role; /* the role of an assistant turn: "assistant", "model" */
    int refuse_function_call;   /* an assistant message's legacy function_call: refused (1) or
                                   dropped (0) */
    int big_numbers;            /* arguments holding a number past 64 bits get their own
                                   message (1), or are "not valid JSON" (0) */
    /* text (non-empty) of a content: a block appended to blocks, or, blocks NULL, the system
     * text. */
    int (*text)(chat_in_t *c, json_t *blocks, json_t *text);
    /* an image_url part (at path: messages[i].content[j]) of a user message -> blocks */
    int (*image)(chat_in_t *c, const char *path, json_t *part, json_t *blocks);
    /* a valid tool call (id and name strings, input an object: stolen) -> blocks */
    int (*call)(chat_in_t *c, json_t *id, json_t *name, json_t *input, json_t *blocks);
    /* a tool message messages[i] (at path) whose tool_call_id id is a string -> blocks */
    int (*tool)(chat_in_t *c, size_t i, const char *path, json_t *m, json_t *id, json_t *blocks);
} chat_in_ops_t;

struct chat_in_s {
    const chat_in_ops_t *ops;
    xlate_error_t *err;
    json_t *msgs;  /* the client's messages, during chat_in_messages */
    json_t *turns; /* the provider's turns: {role, turn_key: [blocks]} (the caller's array) */
    void *ud;      /* the pair's */
};

/* 1 if v is absent or null. */
int chat_in_absent(const json_t *v);

/* Clears err and parses the request body into *in (an object, the caller's to free); else
 * refuses it ("request body: not valid JSON (line L, column C)", "must be a JSON object"). */
int chat_in_load(const char *body, size_t len, xlate_error_t *err, json_t **in);

/* messages -> c->turns (see the design note); refuses an empty list or one without a user
 * or assistant message with content. */
int chat_in_messages(chat_in_t *c, json_t *msgs);

/* The text of a content c (at path = messages[i]): a string, or an array of text parts (and
 * of refusal parts for an assistant; of image_url parts when images is set) -> the text and
 * image callbacks, into blocks (NULL: the system text). */
int chat_in_content(chat_in_t *c, const char *path, json_t *content, const char *role, int images,
                    json_t *blocks);

/* A base64 data: URL url (a string, at param p) -> *media (its media type) and *data (the
 * base64), new strings; refused when it is not one with a media type. */
int chat_in_data_url(chat_in_t *c, const char *p, const json_t *url, json_t **media, json_t **data);

/* in.tools: *list = the array when it holds tools, every one a function with a string name,
 * an optional string description and an optional object parameters; NULL when none. */
int chat_in_tools(chat_in_t *c, json_t *in, json_t **list);

typedef enum chat_choice_e {
    CHAT_CHOICE_UNSET, /* no tool_choice */
    CHAT_CHOICE_AUTO,
    CHAT_CHOICE_NONE,
    CHAT_CHOICE_REQUIRED,
    CHAT_CHOICE_FUNCTION, /* *fname: the function's name (a string) */
} chat_choice_t;

/* in.tool_choice -> *choice (and *fname). */
int chat_in_tool_choice(chat_in_t *c, json_t *in, chat_choice_t *choice, json_t **fname);

/* n other than 1, logprobs true, top_logprobs other than 0: refused (ops->choice_says,
 * ops->lacks). */
int chat_in_refused_choices(chat_in_t *c, json_t *in);

/* audio (output): refused (ops->lacks). */
int chat_in_refused_audio(chat_in_t *c, json_t *in);

/* The legacy members no pair translates (functions, function_call) and web_search_options:
 * refused when present. */
int chat_in_refused_legacy(chat_in_t *c, json_t *in);

/* max_completion_tokens, else max_tokens (a positive integer), else dflt -> *mt, lowered to
 * o->max_tokens_cap (and, when it is 0, set to it). */
int chat_in_max_tokens(chat_in_t *c, json_t *in, const xlate_opts_t *o, json_int_t dflt,
                       json_int_t *mt);

/* stop (a string or an array of strings) -> *list: a new array of its non-empty strings,
 * NULL when absent. */
int chat_in_stop(chat_in_t *c, json_t *in, json_t **list);

/* in.name -> *v (NULL when absent or null): a number ("must be a number"), or, integer set,
 * an integer ("must be an integer"). */
int chat_in_number(chat_in_t *c, json_t *in, const char *name, int integer, json_t **v);

#endif
