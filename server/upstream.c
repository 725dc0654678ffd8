/* upstream.c - placeholder */
typedef int llmgate_placeholder_upstream;
