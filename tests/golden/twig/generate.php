<?php
/**
 * Regenerates tests/golden/twig.json from tests/golden/twig/cases.json with real Twig 3.
 *
 *     php tests/golden/twig/generate.php
 *
 * Every case is rendered the way OpenConnector's MappingService renders a mapping value:
 *
 *     $twig = new \Twig\Environment(new \Twig\Loader\ArrayLoader([]), ['autoescape' => 'html']);
 *     html_entity_decode($twig->createTemplate($template)->render($context));
 *
 * (strict_variables off, the default). The two filters OpenConnector's shipped mappings use but Twig
 * does not have, preg_replace and strip_tags, are registered here as thin wrappers around PHP's own
 * functions, so the table documents the PHP behaviour to reproduce. OpenConnector's other additions
 * (b64enc, b64dec, json_decode, slugify, generateUuid) are not covered.
 *
 * Deterministic: default timezone UTC (PHP and Twig), no case depends on "now" except through a
 * comparison that yields a constant.
 *
 * Output: a JSON array of the cases in cases.json order, each with its name, template, context and
 * why, plus either "expected" (the decoded output) or "error": true, "error_kind" and "twig_error".
 * error_kind is syntax, loader or runtime for Twig's own errors (twig_error is then Twig's message
 * without the template name/line suffix), or other for a PHP \Error (TypeError, DivisionByZeroError,
 * ArgumentCountError, ValueError, ...) that Twig 3.5 lets through unwrapped (twig_error is then
 * "<class>: <message>"). When PHP raised warnings, notices or deprecations while rendering (Twig
 * does not turn them into errors), they are listed in "php_warnings"; "expected" is still what the
 * template printed.
 */

require '/usr/share/php/Twig/autoload.php';

date_default_timezone_set('UTC');
ini_set('precision', '14');           // PHP's default: how floats print in templates
ini_set('serialize_precision', '-1'); // PHP's default: how json_encode prints floats

$dir = __DIR__;
$in = $dir.'/cases.json';
$out = dirname($dir).'/twig.json';

$raw = file_get_contents($in);
if (false === $raw) {
    fwrite(STDERR, "cannot read $in\n");
    exit(1);
}
// Objects as PHP arrays for Twig (exactly what OpenConnector hands Twig), and as stdClass for the
// copy written back out (so `{}` stays `{}` and 1.0 stays 1.0 in twig.json).
$casesForTwig = json_decode($raw, true, 512, JSON_THROW_ON_ERROR);
$casesForOut = json_decode($raw, false, 512, JSON_THROW_ON_ERROR);

function make_env(): \Twig\Environment
{
    $env = new \Twig\Environment(new \Twig\Loader\ArrayLoader([]), ['autoescape' => 'html']);
    $env->getExtension(\Twig\Extension\CoreExtension::class)->setTimezone('UTC');
    // Not Twig filters: OpenConnector mappings call them; the filtered value is the subject. This file
    // is deliberately not strict_types, so PHP's usual coercions (null -> '', int -> string, with a
    // deprecation for null) apply as in any non-strict caller.
    $env->addFilter(new \Twig\TwigFilter('preg_replace', function ($subject, $pattern, $replacement = '', $limit = -1) {
        return preg_replace($pattern, $replacement, $subject, $limit);
    }));
    $env->addFilter(new \Twig\TwigFilter('strip_tags', function ($string, $allowed = null) {
        return strip_tags($string, $allowed);
    }));

    return $env;
}

$levels = [
    E_WARNING => 'Warning', E_NOTICE => 'Notice', E_DEPRECATED => 'Deprecated',
    E_USER_WARNING => 'Warning', E_USER_NOTICE => 'Notice', E_USER_DEPRECATED => 'Deprecated',
];

$names = [];
$result = [];
$errors = 0;
foreach ($casesForTwig as $i => $case) {
    foreach (['name', 'template', 'why'] as $field) {
        if (!isset($case[$field]) || !is_string($case[$field])) {
            fwrite(STDERR, "case #$i: missing string field '$field'\n");
            exit(1);
        }
    }
    if (isset($names[$case['name']])) {
        fwrite(STDERR, "duplicate case name {$case['name']}\n");
        exit(1);
    }
    $names[$case['name']] = true;

    $context = $case['context'] ?? [];
    if (!is_array($context)) {
        fwrite(STDERR, "case {$case['name']}: context must be an object\n");
        exit(1);
    }

    $warnings = [];
    set_error_handler(function (int $no, string $msg) use (&$warnings, $levels) {
        $warnings[] = ($levels[$no] ?? "E$no").': '.$msg;

        return true;
    });
    $row = [
        'name' => $case['name'],
        'template' => $case['template'],
        'context' => $casesForOut[$i]->context ?? new \stdClass(),
        'why' => $case['why'],
    ];
    try {
        $env = make_env();
        $row['expected'] = html_entity_decode($env->createTemplate($case['template'])->render($context));
    } catch (\Throwable $e) {
        $errors++;
        $row['error'] = true;
        if ($e instanceof \Twig\Error\SyntaxError) {
            $row['error_kind'] = 'syntax';
        } elseif ($e instanceof \Twig\Error\LoaderError) {
            $row['error_kind'] = 'loader';
        } elseif ($e instanceof \Twig\Error\RuntimeError) {
            $row['error_kind'] = 'runtime';
        } else {
            $row['error_kind'] = 'other';
        }
        $row['twig_error'] = $e instanceof \Twig\Error\Error ? $e->getRawMessage() : get_class($e).': '.$e->getMessage();
    } finally {
        restore_error_handler();
    }
    if ($warnings) {
        $row['php_warnings'] = array_values(array_unique($warnings));
    }
    $result[] = $row;
}

$json = json_encode($result, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION | JSON_THROW_ON_ERROR);
file_put_contents($out, $json."\n");
printf("%d cases, %d errors, Twig %s, PHP %s -> %s\n", count($result), $errors, \Twig\Environment::VERSION, PHP_VERSION, $out);
